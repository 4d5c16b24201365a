import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real datasets: $SCITIE_DATA_DIR, else ../shared/datasets; skip if absent."""
    env = os.environ.get("SCITIE_DATA_DIR")
    path = Path(env) if env else SHARED
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}: set SCITIE_DATA_DIR to the folder "
                    "holding them (../shared/datasets in a sciTie checkout)")
    return path
