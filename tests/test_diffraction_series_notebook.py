"""Execute notebooks/cucr2o4_series.ipynb on four patterns and a short 2θ range (budget 0.2)."""
import pytest


@pytest.mark.notebook
def test_cucr2o4_series_notebook_runs(execute_notebook, cucr2o4_dir):
    text = execute_notebook("cucr2o4_series.ipynb", timeout=900,
                            env={"SCITIE_BUDGET": "0.2",
                                 "SCITIE_DATA_DIR": str(cucr2o4_dir.parent)})
    assert "4 of 17 patterns" in text
    assert "parametric fit" in text and "F = " in text and "law - sequential" in text
