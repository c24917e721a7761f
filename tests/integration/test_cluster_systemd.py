"""The cluster target and the node template as systemd reads them
(systemd-analyze verify, skipped where it is absent): the target is
understood, and an instance is part of it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_cluster_target_and_an_instance_verify_without_any_message(tmp_path: Path) -> None:
    template = (UNITS / "cachegrid@.service").read_text()
    # The real binary is only on the production host.
    (tmp_path / "cachegrid@.service").write_text(
        re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", template, flags=re.MULTILINE)
    )
    shutil.copy(UNITS / "cachegrid-cluster.target", tmp_path)
    result = subprocess.run(
        [ANALYZE, "verify", "./cachegrid-cluster.target", "./cachegrid@8001.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_an_instance_is_part_of_the_cluster_target() -> None:
    template = (UNITS / "cachegrid@.service").read_text()
    assert re.search(r"^PartOf=cachegrid-cluster\.target$", template, re.MULTILINE)
    assert re.search(r"^WantedBy=.*\bcachegrid-cluster\.target\b", template, re.MULTILINE)
