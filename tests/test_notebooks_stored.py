"""The notebooks are stored executed: a reader sees results without running them.

``python notebooks/execute.py`` refreshes them; CI re-executes each one on a small budget
(``tests/test_*_notebook.py``).
"""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_with_its_outputs(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in cells]
    # executed top to bottom in one kernel, every cell, none stopped by an error
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: run notebooks/execute.py"
    assert all(o.get("output_type") != "error" for c in cells for o in c.get("outputs", []))
    assert sum(bool(c.get("outputs")) for c in cells) >= len(cells) // 2


def test_every_notebook_is_checked():
    assert len(NOTEBOOKS) >= 4
