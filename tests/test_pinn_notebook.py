"""Execute notebooks/periodic_pinn.ipynb with a tiny training budget."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.notebook
def test_periodic_pinn_notebook_runs(execute_notebook):
    budget = os.environ.get("SCITIE_PINN_BUDGET", "0.3")
    # the kernel must import this checkout's sciTie, not whichever one is installed
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    text = execute_notebook("periodic_pinn.ipynb",
                            env={"SCITIE_PINN_BUDGET": budget, "PYTHONPATH": path})
    assert "rel L2" in text and "Burgers" in text
