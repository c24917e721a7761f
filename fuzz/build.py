"""Builds the two fuzz targets: ``python fuzz/build.py`` (what ``make fuzz`` runs first).

1. The sources: meinheld's 1.0.2 sdist from the package index (checked
   against the SHA-256 that ``cachegrid.meinheld_build`` knows), CacheGrid's
   patch set (``cachegrid/meinheld_build/patches``) applied in order, then
   the fuzz-only patches of ``fuzz/patches`` (pools off, a read counter: they
   change nothing unless compiled with ``-DCACHEGRID_FUZZ_NO_POOLS``). The
   tree is kept in ``fuzz/build/meinheld`` and rebuilt when a patch changes.
   With ``FUZZ_WITH_PROPOSED=1`` (``make fuzz``'s default) the fixes proposed
   in ``fuzz/proposed`` are applied after the product's patches, so that a
   campaign goes on past the bugs they fix; one that no longer applies (its
   fix has landed in another form) is skipped with a note.
2. ``fuzz/build/parser_fuzzer``: ``fuzz/parser_fuzzer.c`` and the patched
   ``http_parser.c``, compiled by clang with
   ``-fsanitize=fuzzer,address,undefined``, every UBSan check fatal.
3. ``fuzz/.venv``: a virtualenv of its own (never the project's: the
   sanitizer build of meinheld must not replace the regular one) with
   atheris, CacheGrid (editable, so the harness fuzzes this checkout's app)
   and meinheld built from the tree of step 1 by clang with
   ``-fsanitize=address,undefined,fuzzer-no-link`` (coverage for atheris,
   UBSan fatal; its runtime comes from atheris's preloaded
   ``asan_with_fuzzer.so``) and ``-DCACHEGRID_FUZZ_NO_POOLS``.

Needs clang 14 or later with libFuzzer and the sanitizer runtimes (Debian:
``apt-get install clang-14 libclang-rt-14-dev libfuzzer-14-dev``); CC picks
the compiler (default: ``clang-14``, else ``clang``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cachegrid import meinheld_build  # noqa: E402  (after the path is set)

FUZZ = ROOT / "fuzz"
BUILD = FUZZ / "build"
TREE = BUILD / "meinheld"
VENV = FUZZ / ".venv"
FUZZ_PATCHES = sorted((FUZZ / "patches").glob("*.patch"))
PROPOSED = sorted((FUZZ / "proposed").glob("*.patch"))
SANITIZE = ["-g", "-O1", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]


def compiler() -> str:
    chosen = os.environ.get("CC") or shutil.which("clang-14") or shutil.which("clang")
    if not chosen:
        sys.exit("fuzz/build.py: no clang found (apt-get install clang-14 libclang-rt-14-dev libfuzzer-14-dev)")
    return chosen


def run(command: list[str], **kwargs: object) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def with_proposed() -> bool:
    """FUZZ_WITH_PROPOSED=1: apply fuzz/proposed too, so that a campaign
    goes on past the findings that a proposed patch fixes."""
    return os.environ.get("FUZZ_WITH_PROPOSED") == "1"


def patches_digest() -> str:
    digest = hashlib.sha256()
    for path in [*meinheld_build.patch_files(), *(PROPOSED if with_proposed() else []), *FUZZ_PATCHES]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def prepare_tree() -> Path:
    """The patched meinheld tree, made again when a patch changed."""
    stamp = TREE / ".patches-digest"
    if stamp.exists() and stamp.read_text() == patches_digest():
        return TREE
    shutil.rmtree(TREE, ignore_errors=True)
    BUILD.mkdir(parents=True, exist_ok=True)
    sdist = BUILD / meinheld_build.SDIST
    if not sdist.exists():
        download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        run([*download, "-d", str(BUILD), f"meinheld=={meinheld_build.UPSTREAM_VERSION}"])
    if hashlib.sha256(sdist.read_bytes()).hexdigest() != meinheld_build.SDIST_SHA256:
        sys.exit(f"fuzz/build.py: {sdist.name} does not have the known SHA-256")
    scratch = BUILD / "unpack"
    shutil.rmtree(scratch, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # 3.11.4 and later: no paths outside scratch
            archive.extractall(scratch, filter="data")
        else:
            archive.extractall(scratch)
    (scratch / f"meinheld-{meinheld_build.UPSTREAM_VERSION}").rename(TREE)
    scratch.rmdir()
    for patch in meinheld_build.patch_files():
        run(["patch", "-p1", "--batch", "--forward", "--quiet", "-i", str(patch)], cwd=TREE)
    for patch in PROPOSED if with_proposed() else []:
        # A proposal whose fix has landed in another form no longer applies: skipped.
        dry = ["patch", "-p1", "--batch", "--forward", "--quiet", "--dry-run", "-i", str(patch)]
        if subprocess.run(dry, cwd=TREE, capture_output=True).returncode == 0:
            run([*dry[:-3], "-i", str(patch)], cwd=TREE)
        else:
            print(f"fuzz/build.py: {patch.name} does not apply (landed?): skipped", flush=True)
    for patch in FUZZ_PATCHES:
        run(["patch", "-p1", "--batch", "--forward", "--quiet", "-i", str(patch)], cwd=TREE)
    stamp.write_text(patches_digest())
    return TREE


def build_parser_fuzzer(tree: Path, cc: str) -> Path:
    server = tree / "meinheld" / "server"
    target = BUILD / "parser_fuzzer"
    sources = [str(FUZZ / "parser_fuzzer.c"), str(server / "http_parser.c")]
    run([cc, *SANITIZE, "-fsanitize=fuzzer,address,undefined", f"-I{server}", *sources, "-o", str(target)])
    return target


def build_server_venv(tree: Path, cc: str) -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    run([*pip, "atheris>=2.3", meinheld_build.GREENLET_REQUIREMENT, "setuptools", "wheel"])
    run([*pip, "-e", str(ROOT)])
    flags = " ".join([*SANITIZE, "-fsanitize=address,undefined,fuzzer-no-link", "-DCACHEGRID_FUZZ_NO_POOLS"])
    env = dict(os.environ, CC=cc, LDSHARED=f"{cc} -shared", CFLAGS=flags, LDFLAGS="-fsanitize=address,undefined")
    stamp = VENV / ".meinheld-digest"
    if not stamp.exists() or stamp.read_text() != patches_digest():
        run([*pip, "--no-build-isolation", "--no-deps", "--force-reinstall", str(tree)], env=env)
        stamp.write_text(patches_digest())
    return python


def main() -> int:
    cc = compiler()
    tree = prepare_tree()
    what = sys.argv[1:] or ["parser", "server"]
    if "parser" in what:
        print("built", build_parser_fuzzer(tree, cc).relative_to(ROOT))
    if "server" in what:
        print("built", build_server_venv(tree, cc).relative_to(ROOT), "with the sanitizer build of meinheld")
    return 0


if __name__ == "__main__":
    sys.exit(main())
