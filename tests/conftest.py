import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _data_root() -> Path:
    env = os.environ.get("SCITIE_DATA_DIR")
    return Path(env) if env else SHARED


def pbso4_available() -> bool:
    """Whether the PbSO4 files are where the notebook and tests look for them."""
    return (_data_root() / "pbso4").is_dir()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real datasets: $SCITIE_DATA_DIR, else ../shared/datasets; skip if absent."""
    path = _data_root()
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}: set SCITIE_DATA_DIR to the folder "
                    "holding them (../shared/datasets in a sciTie checkout)")
    return path


@pytest.fixture(scope="session")
def pbso4_dir(shared_data_dir):
    """The pbso4 folder of the shared datasets; skip (with the reason) when it is absent."""
    folder = shared_data_dir / "pbso4"
    if not folder.is_dir():
        pytest.skip(f"PbSO4 data not found in {folder}: set SCITIE_DATA_DIR to the folder "
                    "holding pbso4/ (../shared/datasets in a sciTie checkout)")
    return folder


def cucr2o4_available() -> bool:
    """Whether the CuCr2O4 series is where the notebook and tests look for it."""
    return (_data_root() / "cucr2o4_seq").is_dir()


@pytest.fixture(scope="session")
def cucr2o4_dir(shared_data_dir):
    """The cucr2o4_seq folder of the shared datasets; skip (with the reason) when absent."""
    folder = shared_data_dir / "cucr2o4_seq"
    if not folder.is_dir():
        pytest.skip(f"CuCr2O4 series not found in {folder}: set SCITIE_DATA_DIR to the folder "
                    "holding cucr2o4_seq/ (../shared/datasets in a sciTie checkout)")
    return folder


@pytest.fixture(scope="session")
def si_tof_dir(shared_data_dir):
    """The si_sepd_tof folder of the shared datasets; skip (with the reason) when absent."""
    folder = shared_data_dir / "si_sepd_tof"
    if not (folder / "si_sepd.xye").is_file():
        pytest.skip(f"Si SEPD TOF data not found in {folder}: set SCITIE_DATA_DIR to the folder "
                    "holding si_sepd_tof/ (../shared/datasets in a sciTie checkout)")
    return folder


@pytest.fixture(scope="session")
def dask_client():
    """A small LocalCluster (two in-process workers, one thread each), closed at the end."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        yield client


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def pytest_collection_modifyitems(config, items):
    """Notebooks belong to the slow tier (``-m slow``), like the demo and the docs build; a
    test module that collects tests written elsewhere (hmmlearn's suite) marks them through
    its ``item_marks(item)``."""
    for item in items:
        if item.get_closest_marker("notebook") is not None:
            item.add_marker(pytest.mark.slow)
        item_marks = getattr(getattr(item, "module", None), "item_marks", None)
        if callable(item_marks):
            for mark in item_marks(item):
                item.add_marker(mark)


@pytest.fixture
def execute_notebook(monkeypatch, tmp_path):
    """Run ``notebooks/<name>`` in a fresh kernel and return the text of its outputs.

    The kernel works in ``tmp_path`` unless ``cwd`` is given, so nothing lands in the
    repository; ``env`` entries are set for the kernel (e.g. a training budget).
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    def run(name: str, *, env: dict | None = None, cwd: Path | None = None,
            timeout: int = 120) -> str:
        monkeypatch.setenv("MPLBACKEND", "Agg")
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=timeout, kernel_name="python3",
            resources={"metadata": {"path": str(cwd or tmp_path)}})
        client.execute()
        return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", []))

    return run
