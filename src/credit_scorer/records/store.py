"""The compliance store: where records, models, tickets and the release log live.

Addressed by an fsspec URL (default ``./compliance``). Records are written atomically
and never overwritten: a temporary file is written and fsynced, then hard-linked to
its final name, which fails if the name exists, so a reader never sees half a file and
two writers never clobber each other. Mutable state (tickets, the release log, the
deployment registry) is replaced atomically under an inter-process lock.

Local folders get the full guarantees. Other fsspec backends (``s3://…``, a Modal Volume as
``modal-volume://<volume>/<folder>``, see :mod:`credit_scorer.records.modal_volume`) are written
with the backend's own single-object put, which is atomic per object on S3/GCS/Modal, and a
new record is put with ``mode="create"`` so a backend that can refuse an existing name (Modal)
does; there is no cross-process lock; run one gate at a time against such a store.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from credit_scorer.core.errors import CreditScorerError
from credit_scorer.core.settings import current_settings

DEFAULT_STORE = "./compliance"


class StoreError(CreditScorerError, OSError):
    """The store refused a write (e.g. the record already exists) or cannot be reached."""


class RecordExistsError(StoreError, FileExistsError):
    """A record with that name exists; records are never overwritten."""


def store_url(given: str | None = None) -> str:
    """The store URL: the option, else ``CREDIT_SCORER_STORE``, else ``./compliance``."""
    return given or current_settings().store or DEFAULT_STORE


class ComplianceStore:
    """Append-only record storage over an fsspec URL."""

    def __init__(self, url: str | None = None, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = store_url(url)
        if self.url.startswith(MODAL_VOLUME_SCHEME):
            _use_modal_volumes(self.url)
        fs, root = fsspec.core.url_to_fs(self.url, **dict(storage_options or {}))
        self.fs = fs
        self.is_local = isinstance(fs, LocalFileSystem)
        self.root = str(Path(root).resolve()) if self.is_local else root.rstrip("/")

    def __repr__(self) -> str:
        return f"ComplianceStore({self.url!r})"

    # -- paths ---------------------------------------------------------------
    def path(self, relpath: str) -> str:
        """Absolute path (or bucket key) of a store-relative path."""
        clean = PurePosixPath(relpath)
        if clean.is_absolute() or ".." in clean.parts:
            raise StoreError(f"store path {relpath!r} must be relative and stay inside the store")
        return f"{self.root}/{clean}"

    def local_path(self, relpath: str) -> Path:
        """Filesystem path of a store-relative path (local stores only)."""
        if not self.is_local:
            raise StoreError(f"{self.url} is not a local folder")
        return Path(self.path(relpath))

    # -- reading -------------------------------------------------------------
    def exists(self, relpath: str) -> bool:
        """Whether the file exists."""
        return bool(self.fs.exists(self.path(relpath)))

    def read_bytes(self, relpath: str) -> bytes:
        """Contents of a file; StoreError naming it when absent."""
        try:
            return bytes(self.fs.cat_file(self.path(relpath)))
        except FileNotFoundError as exc:
            raise StoreError(f"{relpath} is not in the compliance store {self.url}") from exc

    def read_text(self, relpath: str) -> str:
        """Contents of a text file."""
        return self.read_bytes(relpath).decode("utf-8")

    def list(self, directory: str, suffix: str = "") -> list[str]:
        """Store-relative paths of the files in a folder, sorted by name."""
        base = self.path(directory)
        if not self.fs.exists(base):
            return []
        names = [PurePosixPath(p).name for p in self.fs.ls(base, detail=False)]
        return sorted(f"{directory}/{n}" for n in names if n.endswith(suffix) and not n.startswith("."))

    # -- writing -------------------------------------------------------------
    def write_new(self, relpath: str, data: bytes) -> str:
        """Write a new file atomically; RecordExistsError if the name is taken."""
        target = self.path(relpath)
        if not self.is_local:
            exists = RecordExistsError(f"{relpath} already exists in {self.url}; records are never overwritten")
            if self.fs.exists(target):
                raise exists
            try:
                self.fs.pipe_file(target, data, mode="create")  # the backend refuses a name taken meanwhile
            except FileExistsError:
                raise exists from None
            return relpath
        final = Path(target)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_file(final.parent, data)
        try:
            os.link(tmp, final)
        except FileExistsError as exc:
            raise RecordExistsError(f"{relpath} already exists in {self.url}; records are never overwritten") from exc
        finally:
            os.unlink(tmp)
        _fsync_dir(final.parent)
        return relpath

    def write_new_unique(self, directory: str, stem: str, suffix: str, data: bytes) -> str:
        """Write ``directory/stem.suffix``, or ``stem_2``, ``stem_3``… if taken; return the path."""
        for n in range(1, 1000):
            name = f"{stem}{suffix}" if n == 1 else f"{stem}_{n}{suffix}"
            try:
                return self.write_new(f"{directory}/{name}", data)
            except RecordExistsError:
                continue
        raise StoreError(f"more than 999 records named {stem}* in {directory}")

    def replace(self, relpath: str, data: bytes) -> None:
        """Atomically replace (or create) a mutable file such as a ticket or the release log."""
        target = self.path(relpath)
        if not self.is_local:
            self.fs.pipe_file(target, data)
            return
        final = Path(target)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_file(final.parent, data)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def delete(self, relpath: str) -> None:
        """Remove a mutable state file (never used on records)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(relpath))

    @contextlib.contextmanager
    def lock(self, name: str = "store") -> Iterator[None]:
        """Hold an exclusive inter-process lock (local stores; a no-op elsewhere)."""
        if not self.is_local:
            yield
            return
        lock_dir = Path(self.root) / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{name}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _temp_file(directory: Path, data: bytes) -> str:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp


MODAL_VOLUME_SCHEME = "modal-volume://"  # records/modal_volume.VOLUME_SCHEME, without importing fsspec's filesystem


def _use_modal_volumes(url: str) -> None:
    """Check a ``modal-volume://`` URL and register the Modal Volume filesystem with fsspec (lazily imported)."""
    from credit_scorer.records.modal_volume import parse_volume_url

    parse_volume_url(url)
    fsspec.register_implementation(
        "modal-volume", "credit_scorer.records.modal_volume.ModalVolumeFileSystem", clobber=True
    )


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:  # pragma: no cover - platform without directory fds
        if exc.errno in (errno.EACCES, errno.EISDIR):
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
