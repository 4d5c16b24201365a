"""Execute notebooks/joint_rietveld_pbso4.ipynb (PbSO4 when the data are there, else synthetic)."""
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "joint_rietveld_pbso4.ipynb"


@pytest.mark.notebook
def test_joint_rietveld_notebook_runs(monkeypatch, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "R_Bragg" in text and "esd joint" in text
    assert ("using the PbSO4" in text) or ("running the synthetic set instead" in text)
