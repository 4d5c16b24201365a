"""Data on a fresh machine: the bundled PbSO4 files, and the fetcher that downloads external
datasets (SHA-256 checked, cached, with local mirrors). No test touches the network: URLs are
``file://`` paths or a local HTTP server started here."""
import functools
import hashlib
import http.server
import re
import socket
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import sciTie
from sciTie import datasets
from sciTie.datasets import REMOTE, RemoteFile
from sciTie.datasets._fetch import download, fetch_files, missing_files
from sciTie.errors import DownloadError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over ``tmp_path / "www"``; yields (base URL, list of paths asked)."""
    root = tmp_path / "www"
    root.mkdir()
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep the test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the bundled PbSO4 files -------------------------------------------------------------------
def test_pbso4_ships_inside_the_package_with_its_provenance(monkeypatch):
    monkeypatch.delenv("SCITIE_DATA_DIR", raising=False)
    folder = datasets.data_dir("pbso4")
    assert folder == Path(datasets.__file__).parent / "data" / "pbso4"
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "Hill" in readme and "UChicago Argonne" in readme
    # every file is listed in the note with the start of its SHA-256
    listed = dict(re.findall(r"\| `([^`]+)` \|[^|]+\| `([0-9a-f]{16})\.\.\.` \|", readme))
    files = {p.name for p in folder.iterdir() if p.name != "README.md"}
    assert set(listed) == files and len(files) == 5
    for name, prefix in listed.items():
        assert _sha((folder / name).read_bytes()).startswith(prefix), name
    assert sum((folder / n).stat().st_size for n in files) < 150_000


def test_bundled_pbso4_equals_the_shared_copy(pbso4_dir):
    bundled = datasets.data_dir("pbso4")
    for f in bundled.iterdir():
        if f.name != "README.md":
            assert f.read_bytes() == (pbso4_dir / f.name).read_bytes(), f.name


# -- the fetcher ----------------------------------------------------------------------------------
def test_download_from_a_file_url_and_a_wrong_hash(tmp_path):
    src = tmp_path / "src.xye"
    src.write_bytes(b"1 2 3\n4 5 6\n")
    good = _sha(src.read_bytes())
    out = download(src.as_uri(), tmp_path / "cache" / "a.xye", good)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(DownloadError, match=r"SHA-256 .*must have 0{64}.*not kept"):
        download(src.as_uri(), tmp_path / "cache" / "b.xye", "0" * 64)
    # nothing half-written is left behind
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a.xye"]


def test_fetch_files_over_http_archive_once_then_cached(tmp_path, server):
    base, root, asked = server
    members = {"OH_00.fxye": b"pattern 0\n", "CuO.cif": b"data_CuO\n"}
    with zipfile.ZipFile(root / "SeqTut.zip", "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    (root / "ed-7.xye").write_bytes(b"2000 10 1\n")
    archive_sha = _sha((root / "SeqTut.zip").read_bytes())
    files = tuple(RemoteFile(k, _sha(v), (f"{base}/SeqTut.zip",), archive_sha256=archive_sha)
                  for k, v in members.items())
    files += (RemoteFile("si.xye", _sha(b"2000 10 1\n"), (f"{base}/missing.xye",
                                                            f"{base}/ed-7.xye")),)
    cache = tmp_path / "cache" / "set"
    assert fetch_files(cache, files) == cache
    assert {p.name for p in cache.iterdir()} == {"OH_00.fxye", "CuO.cif", "si.xye"}
    assert (cache / "CuO.cif").read_bytes() == b"data_CuO\n"
    # one download of the archive; the first URL of si.xye failed (404), the mirror served it
    assert asked == ["/missing.xye", "/ed-7.xye", "/SeqTut.zip"]
    fetch_files(cache, files)
    assert len(asked) == 3                     # complete and intact: nothing downloaded again
    (cache / "OH_00.fxye").write_bytes(b"damaged")
    assert [f.name for f in missing_files(cache, files)] == ["OH_00.fxye"]
    fetch_files(cache, files)
    assert (cache / "OH_00.fxye").read_bytes() == b"pattern 0\n" and asked[-1] == "/SeqTut.zip"


def test_fetch_errors_name_the_url(tmp_path, server):
    base, root, _ = server
    (root / "x.zip").write_bytes(b"not a zip")
    bad_zip = (RemoteFile("a", "0" * 64, (f"{base}/x.zip",), archive_sha256=_sha(b"not a zip")),)
    with pytest.raises(DownloadError, match="x.zip is not a readable zip archive"):
        fetch_files(tmp_path / "c1", bad_zip)
    assert not any((tmp_path / "c1").iterdir())    # the archive is not kept
    url = f"http://127.0.0.1:{_closed_port()}/SeqTut.zip"
    with pytest.raises(DownloadError, match=re.escape(url)):
        fetch_files(tmp_path / "c2", (RemoteFile("a", "0" * 64, (url,)),))


# -- data_dir: mirrors, cache, download, offline ----------------------------------------------
@pytest.fixture
def fake_remote(tmp_path, monkeypatch):
    """``cucr2o4_seq`` served from a local file:// URL; no checkout mirror."""
    src = tmp_path / "upstream"
    src.mkdir()
    files = []
    for name in ("CuCr2O4.cif", "OH_00.fxye"):
        (src / name).write_bytes(name.encode())
        files.append(RemoteFile(name, _sha(name.encode()), ((src / name).as_uri(),)))
    monkeypatch.setitem(REMOTE, "cucr2o4_seq", tuple(files))
    monkeypatch.setattr(datasets, "_checkout_mirror", lambda: None)
    monkeypatch.delenv("SCITIE_DATA_DIR", raising=False)
    return src


def test_data_dir_downloads_into_the_cache_once(tmp_path, fake_remote):
    with sciTie.config_context(cache_dir=tmp_path / "cache"):
        got = datasets.data_dir("cucr2o4-seq")
        assert got == tmp_path / "cache" / "datasets" / "cucr2o4_seq"
        assert (got / "OH_00.fxye").read_bytes() == b"OH_00.fxye"
        (fake_remote / "OH_00.fxye").unlink()          # served from the cache from now on
        with sciTie.config_context(offline=True):
            assert datasets.data_dir("cucr2o4-seq") == got


def test_data_dir_prefers_a_complete_mirror(tmp_path, fake_remote):
    mirror = tmp_path / "mirror"
    (mirror / "cucr2o4_seq").mkdir(parents=True)
    (mirror / "cucr2o4_seq" / "CuCr2O4.cif").write_text("mine")
    with sciTie.config_context(data_dir=mirror, cache_dir=tmp_path / "cache"):
        # incomplete: the cache is filled instead
        assert datasets.data_dir("cucr2o4-seq").parent.name == "datasets"
        (mirror / "cucr2o4_seq" / "OH_00.fxye").write_text("mine")
        assert datasets.data_dir("cucr2o4-seq") == mirror / "cucr2o4_seq"
        assert datasets.data_dir("cucr2o4-seq", path=mirror) == mirror / "cucr2o4_seq"
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        datasets.data_dir("cucr2o4-seq", path=tmp_path / "nowhere")


def test_offline_and_failed_downloads_name_the_url_and_the_setting(tmp_path, fake_remote):
    with sciTie.config_context(cache_dir=tmp_path / "cache", offline=True):
        with pytest.raises(DownloadError) as exc:
            datasets.data_dir("cucr2o4-seq")
    msg = str(exc.value)
    assert "downloads are off" in msg and "SCITIE_OFFLINE" in msg
    assert (fake_remote / "CuCr2O4.cif").as_uri() in msg
    assert "set_config(data_dir=" in msg and "SCITIE_DATA_DIR" in msg
    (fake_remote / "OH_00.fxye").write_bytes(b"changed upstream")
    with sciTie.config_context(cache_dir=tmp_path / "cache"):
        with pytest.raises(DownloadError, match="could not be downloaded.*SHA-256.*data_dir"):
            datasets.data_dir("cucr2o4-seq")


def test_cache_dir_setting_and_platform_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SCITIE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert sciTie.get_config()["cache_dir"] == str(tmp_path / "xdg" / "scitie")
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")     # ignored, as XDG says
        assert sciTie.get_config()["cache_dir"] == str(Path.home() / ".cache" / "scitie")
    monkeypatch.setenv("SCITIE_CACHE_DIR", str(tmp_path / "mine"))
    assert sciTie.get_config()["cache_dir"] == str(tmp_path / "mine")
    with sciTie.config_context(cache_dir=tmp_path / "explicit"):
        assert sciTie.get_config()["cache_dir"] == str(tmp_path / "explicit")


def test_registry_lists_urls_and_hashes_for_the_external_data():
    assert {"cucr2o4_seq", "si_sepd_tof"} <= set(REMOTE)
    for folder, files in REMOTE.items():
        for f in files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), (folder, f.name)
            assert f.urls and all(u.startswith("https://") for u in f.urls)
    assert len(REMOTE["cucr2o4_seq"]) == 20          # 17 patterns, .prm, 2 CIFs
    assert REMOTE["si_sepd_tof"][0].sha256.startswith("b798ebf3")


def test_registry_hashes_match_the_shared_copies(shared_data_dir):
    for folder, files in REMOTE.items():
        if not (shared_data_dir / folder).is_dir():
            continue
        assert not missing_files(shared_data_dir / folder, files), folder
