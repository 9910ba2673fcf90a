"""An fsspec filesystem over Modal Volumes, so the compliance store can live on one.

URL: ``modal-volume://<volume>/<folder>`` (e.g. ``modal-volume://credit-scorer/compliance``; the SOP's
records then sit in ``compliance/approvals/`` of the volume). fsspec paths are ``<volume>/<path>``,
like bucket/key on S3. It uses the Modal client's Volume API only: ``listdir``, ``read_file``,
``batch_upload`` and ``remove_file``. An upload without ``force`` is refused by Modal when the file
exists (``FileExistsError``), so a record written with ``pipe_file(..., mode="create")`` is never
overwritten, even by a concurrent writer. There is no cross-process lock (see ``ComplianceStore``).

The Volume client is injectable (``volume_factory``): the default opens ``modal.Volume.from_name``
(created if missing, hydrated lazily on first use); tests pass an in-memory object with the same
methods.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, BinaryIO, ClassVar, Protocol, cast

from fsspec.spec import AbstractFileSystem
from pydantic import BaseModel, ConfigDict

from credit_scorer.core.errors import ConfigError
from credit_scorer.core.settings import STORE_ENV

PROTOCOL = "modal-volume"
VOLUME_SCHEME = f"{PROTOCOL}://"
# Modal's own rule for object names (modal/_utils/name_utils.py: is_valid_object_name).
OBJECT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIRECTORY = 2  # modal.types.FileEntryType.DIRECTORY


class VolumeEntry(Protocol):
    """What ``Volume.listdir`` returns per entry (``modal.types.FileEntry``)."""

    @property
    def path(self) -> str: ...

    @property
    def type(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def mtime(self) -> int: ...


class VolumeUpload(Protocol):
    """The batch ``Volume.batch_upload()`` yields."""

    def put_file(self, local_file: BinaryIO, remote_path: str) -> None: ...


class VolumeApi(Protocol):
    """The part of ``modal.Volume`` this filesystem uses."""

    def listdir(self, path: str, *, recursive: bool = False) -> list[VolumeEntry]: ...

    def read_file(self, path: str) -> Iterable[bytes]: ...

    def batch_upload(self, force: bool = False) -> AbstractContextManager[VolumeUpload]: ...

    def remove_file(self, path: str, recursive: bool = False) -> None: ...


VolumeFactory = Callable[[str], VolumeApi]


def open_modal_volume(name: str) -> VolumeApi:
    """``modal.Volume.from_name(name, create_if_missing=True)``; lazy, no network until first use."""
    try:
        import modal
    except ImportError:
        raise ConfigError(
            f"the store {PROTOCOL}://{name}/… needs the modal package: pip install 'credit-scorer[modal]'"
        ) from None
    return cast(VolumeApi, modal.Volume.from_name(name, create_if_missing=True))


def _not_found_errors() -> tuple[type[BaseException], ...]:
    """FileNotFoundError, and Modal's NotFoundError when modal is installed (listdir raises it)."""
    try:
        from modal.exception import NotFoundError
    except ImportError:
        return (FileNotFoundError,)
    return (FileNotFoundError, NotFoundError)


class ModalVolumeFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec filesystem over Modal Volumes (``modal-volume://<volume>/<path>``)."""

    protocol: ClassVar[tuple[str, ...]] = (PROTOCOL,)
    root_marker = ""
    cachable = False  # each store gets its own Volume handles (and tests their own doubles)

    def __init__(self, volume_factory: VolumeFactory | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory: VolumeFactory = volume_factory or open_modal_volume
        self._volumes: dict[str, VolumeApi] = {}

    # -- paths ---------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: str | list[str]) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        if path.startswith(f"{PROTOCOL}://"):
            path = path[len(PROTOCOL) + 3 :]
        return path.strip("/")

    def _split(self, path: str) -> tuple[VolumeApi, str, str]:
        """(volume client, volume name, path inside the volume) of an fsspec path."""
        clean = self._strip_protocol(path)
        name, _, inner = clean.partition("/")
        if not name:
            raise ValueError(f"{PROTOCOL} path {path!r} does not name a volume")
        if name not in self._volumes:
            self._volumes[name] = self._factory(name)
        return self._volumes[name], name, inner

    # -- reading -------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries of a folder (or the file itself), as fsspec dicts or names."""
        volume, name, inner = self._split(path)
        try:
            entries = volume.listdir(inner or "/", recursive=False)
        except _not_found_errors() as exc:
            raise FileNotFoundError(f"{PROTOCOL}://{name}/{inner}") from exc
        infos = [self._info(name, entry) for entry in entries]
        return infos if detail else [i["name"] for i in infos]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """Details of one path; FileNotFoundError when it does not exist."""
        volume, name, inner = self._split(path)
        if not inner:
            return {"name": name, "type": "directory", "size": 0}
        try:
            entries = volume.listdir(inner, recursive=False)
        except _not_found_errors() as exc:
            raise FileNotFoundError(f"{PROTOCOL}://{name}/{inner}") from exc
        for entry in entries:  # a file path lists just that file
            if entry.path.strip("/") == inner and int(entry.type) != _DIRECTORY:
                return self._info(name, entry)
        if entries:
            return {"name": f"{name}/{inner}", "type": "directory", "size": 0}
        raise FileNotFoundError(f"{PROTOCOL}://{name}/{inner}")  # listed nothing: Modal has no empty folders

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Whether the path exists; errors other than "not found" propagate (never read as "absent")."""
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """The file's bytes (or a slice of them)."""
        volume, name, inner = self._split(path)
        try:
            data = b"".join(volume.read_file(inner))
        except _not_found_errors() as exc:
            raise FileNotFoundError(f"{PROTOCOL}://{name}/{inner}") from exc
        return data[start:end]

    # -- writing -------------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Upload bytes; with ``mode="create"`` Modal refuses an existing file (FileExistsError)."""
        volume, _, inner = self._split(path)
        if not inner:
            raise ValueError(f"{path!r} is a volume, not a file")
        with volume.batch_upload(force=mode != "create") as batch:
            batch.put_file(io.BytesIO(bytes(value)), f"/{inner}")

    def rm_file(self, path: str) -> None:
        """Remove one file; FileNotFoundError when it is absent."""
        volume, name, inner = self._split(path)
        try:
            volume.remove_file(inner, recursive=False)
        except _not_found_errors() as exc:
            raise FileNotFoundError(f"{PROTOCOL}://{name}/{inner}") from exc

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Folders exist implicitly on a Volume (uploads create their parents)."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Folders exist implicitly on a Volume (uploads create their parents)."""

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise NotImplementedError(f"{PROTOCOL}: open files for reading only; write with pipe_file")
        return io.BytesIO(self.cat_file(path))

    @staticmethod
    def _info(volume: str, entry: VolumeEntry) -> dict[str, Any]:
        kind = "directory" if int(entry.type) == _DIRECTORY else "file"
        return {"name": f"{volume}/{entry.path.strip('/')}", "type": kind, "size": entry.size, "mtime": entry.mtime}


class ModalVolumeUrl(BaseModel):
    """A store URL on a Modal Volume: ``modal-volume://<volume>/<folder>``."""

    model_config = ConfigDict(frozen=True)

    volume: str
    folder: str  # path inside the volume, no leading or trailing slash ("" = the volume's root)


def is_modal_volume_url(url: str | None) -> bool:
    """Whether a store URL points at a Modal Volume."""
    return bool(url) and str(url).startswith(VOLUME_SCHEME)


def parse_volume_url(url: str, setting: str = f"--store / {STORE_ENV}") -> ModalVolumeUrl:
    """Split ``modal-volume://<volume>/<folder>``; ConfigError naming ``setting`` when it is malformed."""
    if not url.startswith(VOLUME_SCHEME):
        raise ConfigError(f"{setting}: {url!r} is not a Modal Volume URL; use {VOLUME_SCHEME}<volume>/<folder>")
    volume, _, folder = url[len(VOLUME_SCHEME) :].partition("/")
    if not OBJECT_NAME.match(volume):
        raise ConfigError(
            f"{setting}: {url!r} does not name a Modal Volume; use {VOLUME_SCHEME}<volume>/<folder> where the "
            f"volume name has 1-64 letters, digits, '-', '_' or '.' (e.g. {VOLUME_SCHEME}credit-scorer/compliance)"
        )
    parts = [p for p in folder.split("/") if p]
    if any(p in {".", ".."} for p in parts) or "?" in folder or "#" in folder:
        raise ConfigError(f"{setting}: the folder {folder!r} in {url!r} must be a plain path inside the volume")
    return ModalVolumeUrl(volume=volume, folder="/".join(parts))
