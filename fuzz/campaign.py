"""Runs the fuzz targets one after the other and keeps a ledger: what ``make fuzz`` runs after ``fuzz/build.py``.

``python fuzz/campaign.py --seconds 300 [--only parser|server] [--nice 19] [--merge]``

Each target runs as one process for ``--seconds`` (one at a time: the
machine's cores stay usable), on its own growing corpus in ``fuzz/build``
seeded from ``fuzz/corpus``, ``fuzz/seeds`` and ``fuzz/regressions``, with
the dictionary ``fuzz/http.dict``. libFuzzer stops at the first finding and
writes it to ``fuzz/build/findings/``; the run's log is kept in
``fuzz/build/logs/``. Every run appends a line to ``fuzz/ledger.tsv`` (date,
target, seconds, executions, findings, the patch sets built in), which the
project keeps: totals across sessions are the sums of its lines.

``--merge`` then minimizes what the parser target found into ``fuzz/corpus``
(libFuzzer's ``-merge=1`` keeps an input only when it adds coverage), the
corpus that the replay test in ``make test`` sends to the regular server.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
BUILD = FUZZ / "build"
PYTHON = FUZZ / ".venv" / "bin" / "python"
LEDGER = FUZZ / "ledger.tsv"
LEDGER_HEADER = "date\ttarget\tseconds\texecutions\tfindings\tbuild\n"
SEEDS = [FUZZ / "corpus", FUZZ / "seeds", FUZZ / "regressions"]
COMMON = ["-dict=" + str(FUZZ / "http.dict"), "-max_len=16384", "-print_final_stats=1"]


def server_env() -> dict[str, str]:
    """What the whole-server harness needs: atheris's ASan runtime (which
    carries UBSan's handlers) preloaded, and Python's allocator off so that
    ASan sees every free."""
    atheris_dir = subprocess.run(
        [str(PYTHON), "-c", "import atheris; print(atheris.path())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return dict(
        os.environ,
        LD_PRELOAD=f"{atheris_dir}/asan_with_fuzzer.so",
        PYTHONMALLOC="malloc",
        ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1",
        UBSAN_OPTIONS="print_stacktrace=1",
    )


def command(target: str, seconds: int) -> tuple[list[str], dict[str, str]]:
    corpus = BUILD / f"{target}-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (BUILD / "findings").mkdir(exist_ok=True)
    options = [*COMMON, f"-max_total_time={seconds}", f"-artifact_prefix={BUILD / 'findings'}/{target}-"]
    folders = [str(corpus), *(str(folder) for folder in SEEDS)]
    if target == "parser":
        return [str(BUILD / "parser_fuzzer"), *options, "-timeout=10", "-rss_limit_mb=2048", *folders], dict(os.environ)
    # The harness's own hang detector fires after 5 s; libFuzzer's -timeout is the backstop.
    harness = [str(PYTHON), str(FUZZ / "server_fuzzer.py")]
    return [*harness, *options, "-timeout=30", "-rss_limit_mb=4096", *folders], server_env()


def executions(log: str) -> int:
    if found := re.findall(r"stat::number_of_executed_units: (\d+)", log):
        return int(found[-1])
    found = re.findall(r"^#(\d+)\s", log, re.MULTILINE)
    return int(found[-1]) if found else 0


def findings(log: str) -> int:
    return len(re.findall(r"Test unit written to ", log))


def build_label() -> str:
    stamp = BUILD / "meinheld" / ".patches-digest"
    digest = stamp.read_text() if stamp.exists() else "?"
    proposed = "with fuzz/proposed" if os.environ.get("FUZZ_WITH_PROPOSED") == "1" else "product patches only"
    return f"{digest} ({proposed})"


def run(target: str, seconds: int, nice: int) -> int:
    argv, env = command(target, seconds)
    (BUILD / "logs").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_path = BUILD / "logs" / f"{target}-{stamp}.log"
    print(f"fuzz: {target} for {seconds} s, log in {log_path.relative_to(FUZZ.parent)}", flush=True)
    with log_path.open("w") as log:
        process = subprocess.run(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(nice) if nice else None
        )
    text = log_path.read_text(errors="replace")
    elapsed = round(time.monotonic() - started)
    count, found = executions(text), findings(text)
    if not LEDGER.exists():
        LEDGER.write_text(LEDGER_HEADER)
    with LEDGER.open("a") as ledger:
        ledger.write(f"{stamp}\t{target}\t{elapsed}\t{count}\t{found}\t{build_label()}\n")
    print(f"fuzz: {target}: {count} executions in {elapsed} s, {found} findings (exit {process.returncode})")
    return 1 if found else 0


def merge(nice: int) -> None:
    """Minimize the parser target's corpus into fuzz/corpus."""
    argv = [str(BUILD / "parser_fuzzer"), "-merge=1", *COMMON, str(FUZZ / "corpus"), str(BUILD / "parser-corpus")]
    subprocess.run(argv, check=True, preexec_fn=lambda: os.nice(nice) if nice else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=300, help="per target")
    parser.add_argument("--only", choices=["parser", "server"])
    parser.add_argument("--nice", type=int, default=0, help="niceness of the fuzzing processes")
    parser.add_argument("--merge", action="store_true", help="then minimize the parser corpus into fuzz/corpus")
    args = parser.parse_args()
    failed = 0
    for target in [args.only] if args.only else ["parser", "server"]:
        failed |= run(target, args.seconds, args.nice)
    if args.merge:
        merge(args.nice)
    return failed


if __name__ == "__main__":
    sys.exit(main())
