"""Execute notebooks/hmm_tied_emissions.ipynb (CI budget: < 60 s)."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "hmm_tied_emissions.ipynb"


@pytest.mark.notebook
def test_hmm_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "-341.8787" in text and "-328.5275" in text
    assert "C-C-C-O-O tied (truth)" in text
