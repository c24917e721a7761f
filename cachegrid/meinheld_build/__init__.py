"""CacheGrid's own meinheld: the 1.0.2 sdist, our patch set, a wheel.

meinheld (the fast gunicorn worker, a C event loop) has had no release since
1.0.2 and no maintained fork. As published it cannot be used: it pins a
greenlet that no longer builds, reads greenlet's object through a bundled
greenlet 0.4 header (memory corruption with greenlet >= 2), leaks 4 KiB per
request with greenlet 1.x, and loses keep-alive connections after a large
response. ``patches/`` holds the fixes, one small patch each, each opening
with what it fixes and why; they apply in name order to the sdist.

``python -m cachegrid.meinheld_build [--require] [PYTHON]`` (what ``make setup`` runs,
and what to run after ``pip install .``) installs into PYTHON's environment
(default: this interpreter's):

1. ``greenlet>=2.0.1`` (the first greenlet that frees a greenlet's frames);
2. the meinheld 1.0.2 sdist from the package index, checked against its
   known SHA-256;
3. the patches, applied with ``patch`` (or ``git apply`` where there is no
   ``patch``), and the version set to ``1.0.2+cachegrid.<digest>``, where the
   digest is taken over the patch set: a build from other patches has another
   version, so ``workers.meinheld_problem()`` tells a stale build, and a
   stock meinheld, from the one this checkout ships;
4. a wheel built from that tree (pip, build isolation) and installed.

It does nothing when the right build is already installed. By default it is
a guarded step: with no C compiler (or no ``patch``/``git``), or when the
build fails, it says why and exits 0, and the server then runs on gthread and
says why at start. ``--require`` (or ``CACHEGRID_MEINHELD_REQUIRED=1``) is for
builds that must ship meinheld, such as the container image: there the same
failures exit 1 (after the compiler's or pip's own messages), so the image
build stops instead of quietly producing a gthread image.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

PATCHES = Path(__file__).resolve().parent / "patches"
UPSTREAM_VERSION = "1.0.2"
SDIST = f"meinheld-{UPSTREAM_VERSION}.tar.gz"
SDIST_SHA256 = "008c76937ac2117cc69e032dc69cea9f85fc605de9bac1417f447c41c16a56d6"
GREENLET_REQUIREMENT = "greenlet>=2.0.1"
LOCAL_TAG = "cachegrid"
# Set to 1 (or pass --require): a failed build is an error, not a fallback.
REQUIRED_ENV = "CACHEGRID_MEINHELD_REQUIRED"


def patch_files() -> list[Path]:
    return sorted(PATCHES.glob("*.patch"))


@functools.cache  # the shipped patches do not change while a process runs
def patch_digest() -> str:
    """A short digest of the patch set: names and contents, in order."""
    digest = hashlib.sha256()
    for path in patch_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


def expected_version() -> str:
    """The version of the meinheld that this checkout's patch set builds."""
    return f"{UPSTREAM_VERSION}+{LOCAL_TAG}.{patch_digest()}"


def installed_version(python: str | None = None) -> str | None:
    """meinheld's installed version, in this interpreter or in ``python``."""
    if python is None or Path(python).resolve() == Path(sys.executable).resolve():
        try:
            return metadata.version("meinheld")
        except metadata.PackageNotFoundError:
            return None
    probe = subprocess.run(
        [python, "-c", "from importlib import metadata; print(metadata.version('meinheld'))"],
        capture_output=True,
        text=True,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def missing_tools() -> str | None:
    """Why the build cannot run here, or None."""
    compiler = os.environ.get("CC", "cc")
    if not (shutil.which(compiler) or shutil.which("gcc")):
        return "no C compiler (cc or gcc) was found"
    if not (shutil.which("patch") or shutil.which("git")):
        return "neither patch nor git was found to apply the patches"
    return None


def _run(command: list[str], cwd: Path | None = None) -> None:
    subprocess.run(command, cwd=cwd, check=True)


def _pip(python: str, *args: str) -> None:
    _run([python, "-m", "pip", "--disable-pip-version-check", *args])


def _apply(patch: Path, tree: Path) -> None:
    if shutil.which("patch"):
        _run(["patch", "-p1", "--batch", "--forward", "--quiet", "-i", str(patch)], cwd=tree)
    else:
        _run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=tree)


def _set_version(tree: Path, version: str) -> None:
    setup = tree / "setup.py"
    text = setup.read_text()
    stock = f'version="{UPSTREAM_VERSION}"'
    if text.count(stock) != 1:
        raise RuntimeError(f"setup.py of the sdist does not hold {stock} once")
    setup.write_text(text.replace(stock, f'version="{version}"'))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(python: str, scratch: Path) -> Path:
    """Download, check, patch and build; the wheel's path."""
    _pip(
        python,
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        "-d",
        str(scratch),
        f"meinheld=={UPSTREAM_VERSION}",
    )
    sdist = scratch / SDIST
    if _sha256(sdist) != SDIST_SHA256:
        raise RuntimeError(f"{SDIST} from the package index does not have the known SHA-256 {SDIST_SHA256}")
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):  # 3.11.4 and later: no paths outside scratch
            archive.extractall(scratch, filter="data")
        else:
            archive.extractall(scratch)
    tree = scratch / f"meinheld-{UPSTREAM_VERSION}"
    for patch in patch_files():
        _apply(patch, tree)
    _set_version(tree, expected_version())
    wheels = scratch / "wheels"
    _pip(python, "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(tree))
    (wheel,) = wheels.glob("meinheld-*.whl")
    return wheel


def _not_built(reason: str, required: bool) -> int:
    """Say why meinheld was not built; 1 when it was required, else 0."""
    if required:
        print(f"meinheld not built: {reason}; it was required ({REQUIRED_ENV} or --require)", file=sys.stderr)
        return 1
    print(f"meinheld not built: {reason}; the server will use the gthread worker")
    return 0


def install(python: str, required: bool = False) -> int:
    want = expected_version()
    have = installed_version(python)
    if have == want:
        print(f"meinheld {want} (CacheGrid's build) is installed")
        return 0
    problem = missing_tools()
    if problem:
        return _not_built(problem, required)
    # Flushed: pip's and the compiler's output follows, on the same terminal.
    print(f"building meinheld {want} (found: {have or 'none'})", flush=True)
    with tempfile.TemporaryDirectory(prefix="cachegrid-meinheld-") as scratch:
        try:
            _pip(python, "install", "--quiet", GREENLET_REQUIREMENT)
            wheel = build(python, Path(scratch))
            _pip(python, "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))
        except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
            # pip has already printed the compiler's output above this line.
            return _not_built(str(error), required)
    print(f"meinheld {installed_version(python)} installed")
    return 0


def required_by_environment() -> bool:
    return os.environ.get(REQUIRED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(__doc__)
        return 0
    required = "--require" in args or required_by_environment()
    rest = [arg for arg in args if arg != "--require"]
    if len(rest) > 1 or any(arg.startswith("-") for arg in rest):
        print(f"usage: python -m cachegrid.meinheld_build [--require] [PYTHON]; not {' '.join(args)}", file=sys.stderr)
        return 2
    return install(rest[0] if rest else sys.executable, required)


if __name__ == "__main__":
    sys.exit(main())
