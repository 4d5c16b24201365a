"""Execute notebooks/joint_rietveld_pbso4.ipynb (PbSO4 when the data are there, else synthetic)."""
import pytest

from conftest import NOTEBOOKS, pbso4_available


@pytest.mark.notebook
def test_joint_rietveld_notebook_runs(execute_notebook):
    # run from notebooks/ so the notebook's own search for ../../shared/datasets works
    text = execute_notebook("joint_rietveld_pbso4.ipynb", cwd=NOTEBOOKS)
    assert "R_Bragg" in text and "esd joint" in text
    if pbso4_available():
        assert "using the PbSO4" in text   # the fallback must not hide a broken PbSO4 path
    else:
        assert "running the synthetic set instead" in text
