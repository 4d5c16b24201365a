"""Execute notebooks/periodic_pinn.ipynb with a tiny training budget."""
import os

import pytest


@pytest.mark.notebook
def test_periodic_pinn_notebook_runs(execute_notebook):
    budget = os.environ.get("SCITIE_PINN_BUDGET", "0.3")
    text = execute_notebook("periodic_pinn.ipynb", env={"SCITIE_PINN_BUDGET": budget})
    assert "rel L2" in text and "Burgers" in text
