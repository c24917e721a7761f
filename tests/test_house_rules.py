"""scripts/house_rules.py: the tree keeps the house rules (files, classes
and functions within their sizes, but for what its ALLOW list names), and
the checker measures what it says it measures."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "house_rules.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("house_rules", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


rules = load()

SOURCE = textwrap.dedent(
    '''\
    """A module."""

    import functools


    @functools.total_ordering
    class Shape:
        """Two decorators' worth of lines above the class line count."""

        def area(self) -> float:
            def half(x: float) -> float:
                return x / 2

            return half(4.0)

        async def fetch(self) -> None:
            pass


    if True:
        def under_if() -> int:
            return 1
    '''
)


def test_the_tree_keeps_the_house_rules(capsys: pytest.CaptureFixture[str]) -> None:
    status = rules.main([])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert [line for line in printed.splitlines() if not line.startswith("note:")] == []


def test_every_allowance_is_over_a_limit_and_says_why() -> None:
    text = SCRIPT.read_text()
    for key in rules.ALLOW:
        line = next(line for line in text.splitlines() if line.strip().startswith(f'"{key}"'))
        assert "(issue: rooms)" in line, line


def test_sizes_of_a_file_its_classes_and_functions() -> None:
    sizes = {(size.kind, size.name): (size.line, size.lines) for size in rules.measure(SOURCE, "pkg/shapes.py")}
    assert sizes == {
        ("file", ""): (1, 22),
        ("class", "Shape"): (7, 12),  # from its decorator on line 6 to line 17
        ("function", "Shape.area"): (10, 5),
        ("function", "Shape.area.half"): (11, 2),
        ("function", "Shape.fetch"): (16, 2),
        ("function", "under_if"): (21, 2),
    }


def test_what_is_over_its_limit_is_a_violation_unless_allowed_at_its_size() -> None:
    def function(name: str, lines: int) -> object:
        return rules.Size("function", "pkg/m.py", name, 1, lines)

    sizes = [function("fits", 80), function("over", 81), function("allowed", 90), function("grown", 91)]
    allow = {"pkg/m.py:allowed": 90, "pkg/m.py:grown": 90, "pkg/m.py:gone": 100, "pkg/m.py:fits": 85}
    assert [size.name for size in rules.violations(sizes, allow)] == ["over", "grown"]
    assert rules.unneeded(sizes, allow) == ["pkg/m.py:fits", "pkg/m.py:gone"]
    assert str(sizes[1]) == "pkg/m.py:1: function over of 81 lines (limit 80)"


def test_the_checker_names_each_violation_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "cachegrid"
    package.mkdir()
    body = "".join(f"    x{n} = {n}\n" for n in range(80))
    (package / "big.py").write_text(f'"""Big."""\n\n\ndef long() -> None:\n{body}')
    (package / "small.py").write_text(SOURCE)
    assert rules.main([], root=tmp_path, allow={}) == 1
    assert capsys.readouterr().out.splitlines() == ["cachegrid/big.py:4: function long of 81 lines (limit 80)"]
    assert rules.main([], root=tmp_path, allow={"cachegrid/big.py:long": 81}) == 0
    assert rules.main(["--report", "--count", "1"], root=tmp_path, allow={}) == 1
    printed = capsys.readouterr().out.splitlines()
    assert "largest functions (limit 80):" in printed
    assert "     81  cachegrid/big.py:long  over" in printed
