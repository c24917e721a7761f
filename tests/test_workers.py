"""The worker choice: CacheGrid's meinheld build or nothing, with the reason.

A stock meinheld or an old greenlet cannot be installed beside the real
ones in one environment, so these tests change only what the worker module
reads of the installed versions; the build that is really installed is
checked by tests/integration (auto chooses it)."""

from __future__ import annotations

from importlib import metadata

import pytest

from cachegrid.daemon import workers
from cachegrid.meinheld_build import expected_version, patch_digest


def pretend_installed(monkeypatch: pytest.MonkeyPatch, **versions: str | None) -> None:
    real = metadata.version

    def version(name: str) -> str:
        if name in versions:
            if versions[name] is None:
                raise metadata.PackageNotFoundError(name)
            return versions[name]  # type: ignore[return-value]
        return real(name)

    monkeypatch.setattr(workers.metadata, "version", version)


def test_the_build_version_names_the_patch_set() -> None:
    assert expected_version() == f"1.0.2+cachegrid.{patch_digest()}"
    assert len(patch_digest()) == 10


def test_a_stock_meinheld_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_installed(monkeypatch, greenlet="3.5.6", meinheld="1.0.2")
    problem = workers.meinheld_problem()
    assert problem and "stock build" in problem and "cachegrid.meinheld_build" in problem
    with pytest.raises(ValueError, match="cannot use the meinheld worker: meinheld 1.0.2 is the stock build"):
        workers.choose("meinheld")
    assert workers.choose("auto") == ("gthread", workers.WORKERS["gthread"], problem)


@pytest.mark.parametrize("greenlet", ["1.1.3.post0", "2.0.0.post0", "0.4.17"])
def test_a_greenlet_that_leaks_is_refused(monkeypatch: pytest.MonkeyPatch, greenlet: str) -> None:
    pretend_installed(monkeypatch, greenlet=greenlet, meinheld=expected_version())
    problem = workers.meinheld_problem()
    assert problem and f"greenlet {greenlet} leaks 4 KiB per request" in problem


@pytest.mark.parametrize("greenlet", ["2.0.1", "3.5.6"])
def test_greenlet_2_0_1_and_later_are_accepted(monkeypatch: pytest.MonkeyPatch, greenlet: str) -> None:
    pretend_installed(monkeypatch, greenlet=greenlet, meinheld=expected_version())
    problem = workers.meinheld_problem()
    # Accepted: no problem at all, or (on a machine without the build) only
    # that the module does not load.
    assert problem is None or ("does not load" in problem and "greenlet" not in problem), problem


def test_a_build_from_another_patch_set_is_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_installed(monkeypatch, greenlet="3.5.6", meinheld="1.0.2+cachegrid.0000000000")
    problem = workers.meinheld_problem()
    assert problem and "another patch set" in problem and expected_version() in problem


def test_no_meinheld_or_no_greenlet_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_installed(monkeypatch, greenlet="3.5.6", meinheld=None)
    assert "meinheld is not installed" in (workers.meinheld_problem() or "")
    pretend_installed(monkeypatch, greenlet=None)
    assert "greenlet is not installed" in (workers.meinheld_problem() or "")


def test_an_unknown_worker_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown worker 'sync'"):
        workers.choose("sync")
    assert workers.choose("gthread") == ("gthread", workers.WORKERS["gthread"], None)


def test_both_workers_write_the_same_error_answers() -> None:
    """The meinheld build's table of its own answers (patch 0014, in C) is
    worker_errors.ANSWERS, which the gthread worker writes."""
    import re

    from cachegrid.daemon.worker_errors import ANSWERS, answer
    from cachegrid.meinheld_build import PATCHES

    patch = (PATCHES / "0014-json-error-answers.patch").read_text()
    added = "\n".join(line[1:] for line in patch.splitlines() if line.startswith("+"))
    entries = re.findall(r'\{(\d{3}), "([^"]+)", "([^"]+)",\s*"([^"]+)"\}', added)
    assert {int(status): (reason, error, message) for status, reason, error, message in entries} == ANSWERS
    for status in ANSWERS:
        head, _, body = answer(status).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status) and b"\r\nServer:" not in head
        assert b"Content-Length: %d" % len(body) in head and b"Connection: close" in head
