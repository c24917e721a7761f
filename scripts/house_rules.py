"""The house rules a tool can check, checked: no product file (a module
under cachegrid/) over 700 lines, no class over 450 lines, no function or
method over 80 lines.

Sizes are read with ``ast``, nothing is imported. A file's size is its
number of lines; a class's or a function's runs from its first decorator
(or its ``class``/``def`` line) to its last line, docstring, comments and
nested definitions included: what a reader has to take in at once. A
nested function is measured on its own too.

    python scripts/house_rules.py            # every violation, exit 1 if any
    python scripts/house_rules.py --report   # the largest files, classes and functions

``make lint`` runs it, and so does the test suite (tests/test_house_rules.py).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

LIMITS = {"file": 700, "class": 450, "function": 80}
PLURALS = {"file": "files", "class": "classes", "function": "functions"}

# What is over a limit today and allowed to stay so for now, each at no more
# than its size when it was listed: it may shrink, never grow. Empty is the
# goal; an entry goes when its file, class or function is taken apart (the
# checker says when one is no longer needed). Keys are the file's path and,
# for a class or a function, its qualified name after a colon.
ALLOW: dict[str, int] = {}

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "cachegrid"


@dataclass(frozen=True)
class Size:
    """The size of one file, class or function."""

    kind: str  # "file", "class" or "function"
    path: str  # relative to the repository, with forward slashes
    name: str  # qualified name ("Store._write"); "" for a file
    line: int
    lines: int

    @property
    def key(self) -> str:
        return f"{self.path}:{self.name}" if self.name else self.path

    @property
    def limit(self) -> int:
        return LIMITS[self.kind]

    def __str__(self) -> str:
        what = self.kind if not self.name else f"{self.kind} {self.name}"
        return f"{self.path}:{self.line}: {what} of {self.lines} lines (limit {self.limit})"


def measure(source: str, path: str) -> list[Size]:
    """The sizes of the file ``path`` whose text is ``source``, of each of
    its classes and of each of its functions (methods and nested ones too)."""
    sizes = [Size("file", path, "", 1, len(source.splitlines()))]
    sizes.extend(_definitions(ast.parse(source, filename=path), path, ""))
    return sizes


def _definitions(node: ast.AST, path: str, prefix: str) -> Iterator[Size]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{child.name}"
            first = min([child.lineno] + [decorator.lineno for decorator in child.decorator_list])
            last = child.end_lineno or child.lineno
            kind = "class" if isinstance(child, ast.ClassDef) else "function"
            yield Size(kind, path, name, child.lineno, last - first + 1)
            yield from _definitions(child, path, f"{name}.")
        else:  # definitions under `if`, `try`, `with`... belong to the same scope
            yield from _definitions(child, path, prefix)


def measure_tree(root: Path = ROOT, package: str = PACKAGE) -> list[Size]:
    """The sizes of every module of ``package`` under ``root``."""
    sizes: list[Size] = []
    for file in sorted((root / package).rglob("*.py")):
        sizes.extend(measure(file.read_text(encoding="utf-8"), file.relative_to(root).as_posix()))
    return sizes


def violations(sizes: Sequence[Size], allow: dict[str, int]) -> list[Size]:
    """What is over its limit and not allowed (or has grown past its allowance)."""
    return [size for size in sizes if size.lines > size.limit and size.lines > allow.get(size.key, 0)]


def unneeded(sizes: Sequence[Size], allow: dict[str, int]) -> list[str]:
    """Entries of ``allow`` that nothing needs any more: gone, or within the limit."""
    over = {size.key for size in sizes if size.lines > size.limit}
    return sorted(key for key in allow if key not in over)


def report(sizes: Sequence[Size], allow: dict[str, int], count: int) -> list[str]:
    """The ``count`` largest files, classes and functions, each against its limit."""
    lines: list[str] = []
    for kind in LIMITS:
        largest = sorted((size for size in sizes if size.kind == kind), key=lambda size: -size.lines)[:count]
        lines.append(f"largest {PLURALS[kind]} (limit {LIMITS[kind]}):")
        for size in largest:
            mark = "  over" if size.lines > size.limit else ""
            if mark and size.key in allow:
                mark += f", allowed up to {allow[size.key]}"
            lines.append(f"  {size.lines:5d}  {size.key}{mark}")
    return lines


def main(argv: Sequence[str] | None = None, root: Path = ROOT, allow: dict[str, int] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="print the largest files, classes and functions")
    parser.add_argument("--count", type=int, default=10, help="how many of each --report prints (10)")
    options = parser.parse_args(argv)
    allow = ALLOW if allow is None else allow
    sizes = measure_tree(root)
    if options.report:
        print("\n".join(report(sizes, allow, options.count)))
    found = violations(sizes, allow)
    for size in found:
        allowed = f", allowed up to {allow[size.key]}" if size.key in allow else ""
        print(f"{size}{allowed}")
    for key in unneeded(sizes, allow):
        print(f"note: {key} is within its limit now: remove it from ALLOW in scripts/house_rules.py")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
