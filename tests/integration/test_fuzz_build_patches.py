"""The fuzz build's own patches (``fuzz/patches``: meinheld's pools off, the
read counter the whole-server harness waits on) still apply on top of the
product's patch set. They are applied only by ``fuzz/build.py``, which no
other test runs, so a product patch that moves their context would otherwise
break ``make fuzz`` unnoticed until the next campaign.

The sdist is the one the product's build downloads (its SHA-256 checked);
every patch is applied with ``patch`` as both builds do. No compiler needed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from cachegrid import meinheld_build

FUZZ_PATCHES = Path(__file__).resolve().parent.parent.parent / "fuzz" / "patches"

pytestmark = [
    pytest.mark.slow,  # downloads meinheld's sdist (a second or two)
    pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch program, as make setup does"),
]


def apply(patch: Path, tree: Path) -> subprocess.CompletedProcess[str]:
    command = ["patch", "-p1", "--batch", "--forward", "-i", str(patch)]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True)


def test_the_fuzz_patches_apply_after_the_product_patches(tmp_path: Path) -> None:
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*download, "-d", str(tmp_path), f"meinheld=={meinheld_build.UPSTREAM_VERSION}"], check=True)
    sdist = tmp_path / meinheld_build.SDIST
    assert meinheld_build._sha256(sdist) == meinheld_build.SDIST_SHA256
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    tree = tmp_path / f"meinheld-{meinheld_build.UPSTREAM_VERSION}"
    for patch in meinheld_build.patch_files():
        result = apply(patch, tree)
        assert result.returncode == 0, f"{patch.name}: {result.stdout}{result.stderr}"
    fuzz_patches = sorted(FUZZ_PATCHES.glob("*.patch"))
    assert fuzz_patches, "fuzz/patches holds the fuzz build's patches"
    for patch in fuzz_patches:
        result = apply(patch, tree)
        assert result.returncode == 0, f"{patch.name} no longer applies: {result.stdout}{result.stderr}"
        assert "with fuzz" not in result.stdout, f"{patch.name} applies only loosely: {result.stdout}"
    assert not list(tree.rglob("*.rej"))
