"""The README's three-node recipe gives each node a name of its own: its
shell loop, run with ``cachegrid`` standing for a function that prints the
node_id the server would take from its environment."""

from __future__ import annotations

import re
import subprocess

from ._support import REPO


def recipe() -> str:
    """The first bash block of the README's "Running a cluster" section."""
    section = (REPO / "README.md").read_text().split("## Running a cluster", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found is not None, "no bash block in Running a cluster"
    return found.group(1)


def test_the_readme_cluster_recipe_names_each_node_apart() -> None:
    script = 'cachegrid() { echo "${CACHEGRID_NODE_ID:-$(hostname)}"; }\n' + recipe() + "wait\n"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    names = result.stdout.split()
    assert len(names) == 3 and len(set(names)) == 3, names
    assert {name.rpartition(":")[2] for name in names} == {"8001", "8002", "8003"}
