"""Download the files of an external dataset into a cache folder, checking their SHA-256.

A small fetcher in the manner of pooch (which sciTie does not depend on): every file has a
known hash; a download is written to a temporary file next to its target, checked, and only
then renamed into place (atomic on one file system), so an interrupted or corrupted transfer
never leaves a file that looks complete. Files that come inside a zip archive are downloaded
once as the archive (checked against the archive's hash), then each member is checked
against its own hash. Cached files are re-hashed on every use, so a damaged cache is
noticed and fetched again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..errors import DownloadError
from ._registry import RemoteFile

__all__ = ["sha256_of", "download", "fetch_files", "missing_files"]

_CHUNK = 1 << 16
#: Seconds a connection may stay silent before the download is abandoned.
TIMEOUT = 60.0


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 (lower-case hex) of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_checked(target: Path, chunks, sha256: str, source: str) -> Path:
    """Write ``chunks`` to a temporary file beside ``target``; rename it into place only when
    its SHA-256 is ``sha256`` (else delete it and raise :class:`DownloadError`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                h.update(chunk)
                out.write(chunk)
        got = h.hexdigest()
        if got != sha256.lower():
            raise DownloadError(
                f"{source} has SHA-256 {got}, but {target.name} must have {sha256}; the file "
                "was not kept (the copy at that address differs from the one sciTie knows)")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _stream(url: str, timeout: float):
    """The bytes at ``url`` in chunks; network and server errors become DownloadError."""
    from .._version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"sciTie/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    return
                yield chunk
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"downloading {url} failed: {reason}") from exc


def download(url: str, target: str | os.PathLike, sha256: str, *,
             timeout: float = TIMEOUT) -> Path:
    """Download ``url`` to ``target`` if its SHA-256 is ``sha256`` (atomic; never a partial
    file). Returns ``target``.

    Raises
    ------
    DownloadError
        The address cannot be reached or answers with an error, or the bytes that arrived
        have another hash (nothing is written then).
    """
    target = Path(target)
    logging.getLogger("sciTie.datasets").info("downloading %s to %s", url, target)
    return _write_checked(target, _stream(url, timeout), sha256, url)


def _valid(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == sha256.lower()


def missing_files(folder: Path, files: tuple[RemoteFile, ...]) -> list[RemoteFile]:
    """The files of ``files`` that ``folder`` lacks or holds with the wrong hash."""
    return [f for f in files if not _valid(folder / f.name, f.sha256)]


def _from_any(urls: tuple[str, ...], target: Path, sha256: str, timeout: float) -> Path:
    """Try each URL in turn; the error lists every failure."""
    errors = []
    for url in urls:
        try:
            return download(url, target, sha256, timeout=timeout)
        except DownloadError as exc:
            errors.append(str(exc))
    raise DownloadError("; ".join(errors))


def fetch_files(folder: str | os.PathLike, files: tuple[RemoteFile, ...], *,
                timeout: float = TIMEOUT) -> Path:
    """Make ``folder`` hold every file of ``files`` with its hash, downloading what is
    missing or damaged. Returns the folder.

    Files from one zip archive are fetched with one download of the archive (kept in the
    folder only until its members are extracted and checked).
    """
    folder = Path(folder)
    todo = missing_files(folder, files)
    for f in [f for f in todo if not f.archive_sha256]:
        _from_any(f.urls, folder / f.name, f.sha256, timeout)
    archives: dict[tuple, list[RemoteFile]] = {}
    for f in todo:
        if f.archive_sha256:
            archives.setdefault((f.urls, f.archive_sha256), []).append(f)
    for (urls, archive_sha256), members in archives.items():
        name = urls[0].rstrip("/").rsplit("/", 1)[-1] or "archive.zip"
        # a name of its own: another process may be fetching the same archive
        archive = folder / f".{name}.{secrets.token_hex(6)}"
        try:
            _from_any(urls, archive, archive_sha256, timeout)
            with zipfile.ZipFile(archive) as zf:
                for f in members:
                    member = f.member or f.name
                    try:
                        data = zf.read(member)
                    except KeyError:
                        raise DownloadError(f"{urls[0]} has no member {member!r}") from None
                    _write_checked(folder / f.name, [data], f.sha256, f"{member} in {urls[0]}")
        except zipfile.BadZipFile as exc:
            raise DownloadError(f"{urls[0]} is not a readable zip archive: {exc}") from None
        finally:
            try:
                archive.unlink()
            except FileNotFoundError:
                pass
    return folder
