"""Execute notebooks/hmm_tied_emissions.ipynb (CI budget: < 60 s)."""
import pytest


@pytest.mark.notebook
def test_hmm_notebook_executes(execute_notebook):
    text = execute_notebook("hmm_tied_emissions.ipynb")
    assert "-341.8787" in text and "-328.5275" in text
    assert "C-C-C-O-O tied (truth)" in text
