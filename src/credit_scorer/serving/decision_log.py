"""The decision log (EU AI Act Art. 12): one JSON line per scored applicant, in the file before the answer.

**Write path.** The request handler turns its decisions into JSON lines and appends them with
one ``write()`` to ``decisions.jsonl`` (opened ``O_APPEND``, mode 0600) *before* the response
is sent (:meth:`DecisionLog.write`). When ``write()`` returns, the bytes belong to the
operating system (its page cache): they survive the server process being killed (SIGKILL,
the OOM killer, a crash), so every decision a caller was answered is in the log. A decision
whose lines cannot be written is not answered (:class:`LogUnavailable`, the service's 503).

**Power loss.** A background thread ``fdatasync``s the live file at most every
:data:`SYNC_SECONDS` (20 ms), and only when something was written since the last sync. A
kernel crash or power cut can therefore lose the decisions answered in the last ~20 ms
before it (plus the duration of the sync in flight); nothing older. Rotated segments and
their seals are fsynced (and the folder with them) before a seal is written.

**Segments and seals.** When the next request's lines would take the live file past
``max_bytes`` (64 MiB), it is renamed ``decisions-<UTC time>-<n>.jsonl`` (``link`` +
``unlink``: a name is never overwritten) and a new live file is started; a sealing thread
then fsyncs the full segment and writes ``<segment>.seal.json`` beside it
(:func:`seal_segment`: sha256, line and byte counts, first/last request id and time, release,
model, ``reason`` = ``"rotation"``). :meth:`DecisionLog.close` (clean shutdown) syncs, renames
the live file the same way and seals it with ``reason`` = ``"shutdown"``, so a later server
for the same release starts a new file and never appends to a sealed one (an empty live file
is removed instead: it records nothing). Files are created owner-only (0600). A segment left
by a killed server (its ``decisions.jsonl``, or a rotated segment whose seal was not written
yet) can be renamed with :func:`retire_live_file` and sealed by other code with
:func:`seal_segment`.

**Start-up.** An existing ``decisions.jsonl`` is appended to. If a killed server left a line
half-written (a ``write()`` interrupted by SIGKILL: that request was never answered), the
incomplete tail is cut off first; if it was killed between the two steps of a rename, the
live name (already a segment) is dropped and a new live file started.

Each line: ``request_id`` (``<id>:<row>`` in a batch), ``timestamp`` (UTC, milliseconds),
``release_id``, ``model_sha256``, ``input_sha256`` (sha256 of the applicant's validated
values as little-endian float64 in the order of ``/model``'s ``request_fields``),
``probability_of_default``, ``decision``, ``reasons`` (codes) and ``reason_codes_version``.
Every string is JSON-escaped, whatever it holds, so no input can change a line's structure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

LOG_NAME = "decisions.jsonl"
SEAL_SUFFIX = ".seal.json"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
SYNC_SECONDS = 0.02
FILE_MODE = 0o600
_TAIL_BYTES = 64 * 1024  # more than any line: where seal_segment looks for the last one
_APPEND = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)  # read: only to repair


class LogUnavailable(RuntimeError):
    """The decision log cannot be written (disk full, I/O error, closed): no decision may be answered."""


@dataclass(frozen=True)
class Batch:
    """Decisions of one request (one row for /predict, n for /predict/batch)."""

    request_id: str
    at: float  # time.time() when the request was scored
    values: np.ndarray  # n×k validated inputs, float64
    proba: np.ndarray  # n probabilities of default
    declined: np.ndarray  # n booleans
    reasons: list[list[str]]  # n lists of codes (empty for approvals)


class DecisionLog:
    """Append-only, size-rotated JSON-lines log, written on the request path and synced by a thread."""

    def __init__(
        self,
        folder: Path,
        release_id: str,
        model_sha256: str,
        reason_codes_version: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / LOG_NAME
        self.max_bytes = max_bytes
        self.release_id = release_id
        self.model_sha256 = model_sha256
        self._prefix = (
            f'"release_id":{json.dumps(release_id)},"model_sha256":{json.dumps(model_sha256)},'
            f'"reason_codes_version":{json.dumps(reason_codes_version)}'
        )
        self._stamp = (-1, "")  # (second, "YYYY-mm-ddTHH:MM:SS.") of the last line written
        self._lock = threading.Lock()  # the live file: its descriptor, size, rotation
        self._fd = _open_live(self.path)
        self._size = os.fstat(self._fd).st_size
        self._dirty = False
        self._closed = False
        self._error: BaseException | None = None
        self._sealers: list[threading.Thread] = []
        _fsync_dir(self.folder)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sync_loop, name="decision-log-sync", daemon=True)
        self._thread.start()

    # -- request path ----------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        """Append a request's lines with ``write()``; return once the OS has them. :class:`LogUnavailable` if not."""
        data = self._lines(batch)
        with self._lock:
            if self._error is not None or self._closed:
                raise LogUnavailable(self._why())
            try:
                if self._size and self._size + len(data) > self.max_bytes:
                    self._rotate()
                self._append(data)
            except OSError as exc:
                self._error = exc
                raise LogUnavailable(self._why()) from exc

    @property
    def healthy(self) -> bool:
        """False once a write or sync has failed (disk full, I/O error, permissions)."""
        return self._error is None and self._thread.is_alive()

    def close(self, timeout: float = 30.0) -> None:
        """Sync, rename the live file to a sealed segment (reason "shutdown"); RuntimeError if anything failed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._thread.join(timeout)
        for sealer in self._sealers:
            sealer.join(timeout)
        try:
            os.fsync(self._fd)
            size = os.fstat(self._fd).st_size
            os.close(self._fd)
            if size:
                segment = retire_live_file(self.folder)
                if segment is not None:
                    seal_segment(segment, self.release_id, self.model_sha256, "shutdown")
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)  # nothing recorded: no segment to keep
                _fsync_dir(self.folder)
        except OSError as exc:
            self._error = self._error or exc
        if self._error is not None:
            raise RuntimeError(f"the decision log failed: {self._error}") from self._error

    # -- internals -----------------------------------------------------------------------
    def _why(self) -> str:
        if self._closed and self._error is None:
            return "the decision log is closed"
        return f"the decision log cannot be written: {self._error}"

    def _append(self, data: bytes) -> None:
        written = os.write(self._fd, data)
        if written != len(data):  # only when the disk fills up mid-way
            try:
                view = memoryview(data)
                while written < len(data):
                    written += os.write(self._fd, view[written:])
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)  # no half line: the request gets a 503
                raise
        self._size += written
        self._dirty = True

    def _rotate(self) -> None:
        """Rename the full live file to a segment and start a new one; a thread syncs and seals the segment."""
        full = self._fd
        segment = retire_live_file(self.folder)
        self._fd = _open_live(self.path)
        self._size = 0
        self._dirty = False
        os.close(full)  # its unsynced pages stay in the page cache; the sealer syncs them by name
        if segment is None:  # cannot happen while this process holds the file
            return
        sealer = threading.Thread(target=self._seal, args=(segment,), name="decision-log-seal", daemon=True)
        self._sealers = [t for t in self._sealers if t.is_alive()]
        self._sealers.append(sealer)
        sealer.start()

    def _seal(self, segment: Path) -> None:
        try:
            _fsync_file(segment)
            seal_segment(segment, self.release_id, self.model_sha256, "rotation")
        except BaseException as exc:
            self._error = self._error or exc

    def _sync_loop(self) -> None:
        """At most every SYNC_SECONDS: fdatasync the live file if anything was written since the last time."""
        try:
            while not self._stop.wait(SYNC_SECONDS):
                with self._lock:
                    fd = self._fd if self._dirty else -1
                    self._dirty = False
                if fd >= 0:
                    try:
                        os.fdatasync(fd)
                    except OSError:
                        with self._lock:
                            if fd == self._fd:  # else rotated away (and closed) meanwhile: its sealer syncs it
                                raise
        except BaseException as exc:
            self._error = self._error or exc

    def _lines(self, batch: Batch) -> bytes:
        millis = int(batch.at * 1000)
        second, text = self._stamp
        if millis // 1000 != second:
            second = millis // 1000
            text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._stamp = (second, text)
        values = np.ascontiguousarray(batch.values, dtype="<f8")
        width = values.shape[1] * values.itemsize
        raw = memoryview(values.tobytes())  # one copy; each row's hash reads its slice
        head = f',"timestamp":"{text}{millis % 1000:03d}Z",{self._prefix},"input_sha256":"'
        sha256, dumps = hashlib.sha256, orjson.dumps
        quoted = json.dumps(batch.request_id)  # '"<id>"', escaped whatever it holds
        probas = batch.proba.tolist()
        if len(probas) == 1:
            (codes,) = batch.reasons
            return (
                f'{{"request_id":{quoted}{head}{sha256(raw).hexdigest()}",'
                f'"probability_of_default":{dumps(probas[0]).decode()},'
                f'"decision":"{"decline" if batch.declined[0] else "approve"}",'
                f'"reasons":{dumps(codes).decode() if codes else "[]"}}}\n'
            ).encode()
        opening = quoted[:-1]  # rows are '"<id>:<i>"': digits and a colon need no escaping
        digests = [sha256(raw[at : at + width]).hexdigest() for at in range(0, len(probas) * width, width)]
        numbers = dumps(probas)[1:-1].decode().split(",")  # shortest round-trip form, 3x faster than repr()
        rows = zip(digests, numbers, batch.declined.tolist(), batch.reasons, strict=True)
        return "".join(
            [
                f'{{"request_id":{opening}:{i}"{head}{digest}","probability_of_default":{number},'
                f'"decision":"{"decline" if declined else "approve"}",'
                f'"reasons":{dumps(codes).decode() if codes else "[]"}}}\n'
                for i, (digest, number, declined, codes) in enumerate(rows)
            ]
        ).encode()


# ---------------------------------------------------------------------------
# Segments and seals
# ---------------------------------------------------------------------------
def seal_path(segment: Path) -> Path:
    """Where the seal of ``segment`` lives: ``<segment name>.seal.json`` beside it."""
    segment = Path(segment)
    return segment.with_name(segment.name + SEAL_SUFFIX)


def retire_live_file(folder: Path) -> Path | None:
    """Rename ``<folder>/decisions.jsonl`` to ``decisions-<UTC time>-<n>.jsonl`` (never overwriting); None if absent.

    Only for a live file no server is writing to any more (a server does this itself when it
    rotates and at clean shutdown).
    """
    folder = Path(folder)
    live = folder / LOG_NAME
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 1
    while True:
        target = folder / f"decisions-{stamp}-{n}.jsonl"
        try:
            os.link(live, target)  # fails if the name exists: a segment is never replaced
        except FileExistsError:
            n += 1
            continue
        except FileNotFoundError:
            return None
        break
    os.unlink(live)
    _fsync_dir(folder)
    return target


def seal_segment(path: Path, release_id: str, model_sha256: str, reason: str) -> dict[str, Any]:
    """Write ``<segment>.seal.json`` for a finished segment and return its contents.

    The seal: ``segment`` (file name), ``sha256`` (of the bytes), ``lines`` (newline-terminated),
    ``bytes``, ``first_request_id``, ``last_request_id``, ``first_at``, ``last_at`` (the lines'
    timestamps; null for an empty segment), ``release_id``, ``model_sha256``, ``reason`` (the
    service writes ``"rotation"`` and ``"shutdown"``; code sealing a segment left by a killed
    server passes its own, e.g. ``"recovery"``) and ``sealed_at`` (UTC). It is written to a
    temporary file (0600), fsynced and linked into place, so it appears whole or not at all
    and an existing seal is never overwritten (FileExistsError). Call it only for a segment
    nothing writes to any more.
    """
    segment = Path(path)
    digest = hashlib.sha256()
    size = lines = 0
    head = tail = b""
    with open(segment, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
            if b"\n" not in head and len(head) < _TAIL_BYTES:
                head += chunk[:_TAIL_BYTES]
            tail = (tail + chunk)[-_TAIL_BYTES:]
    complete = tail[: tail.rfind(b"\n")] if b"\n" in tail else b""  # without a torn last line, if any
    first = _line_fields(head.split(b"\n", 1)[0]) if lines else {}
    last = _line_fields(complete.rsplit(b"\n", 1)[-1]) if lines else {}
    seal = {
        "segment": segment.name,
        "sha256": digest.hexdigest(),
        "lines": lines,
        "bytes": size,
        "first_request_id": first.get("request_id"),
        "last_request_id": last.get("request_id"),
        "first_at": first.get("timestamp"),
        "last_at": last.get("timestamp"),
        "release_id": release_id,
        "model_sha256": model_sha256,
        "reason": reason,
        "sealed_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    target = seal_path(segment)
    if target.exists():
        raise FileExistsError(f"{target} exists: segment {segment.name} is already sealed")
    temp = segment.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(seal, indent=2).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, target)  # atomic, and fails rather than overwrite
        except FileExistsError:
            raise FileExistsError(f"{target} exists: segment {segment.name} is already sealed") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _fsync_dir(segment.parent)
    return seal


def read_seal(segment: Path) -> dict[str, Any] | None:
    """The seal of ``segment`` (see :func:`seal_segment`), or None when it has none yet."""
    try:
        raw = seal_path(segment).read_bytes()
    except FileNotFoundError:
        return None
    seal = json.loads(raw)
    if not isinstance(seal, dict):
        raise ValueError(f"{seal_path(segment)} is not a seal: expected a JSON object")
    return seal


def _line_fields(line: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(line)
    except ValueError:
        return {}
    return fields if isinstance(fields, dict) else {}


def _open_live(path: Path) -> int:
    """Open (or create, 0600) the live file for appending, repairing what a killed server may have left."""
    fd = os.open(path, _APPEND, FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_nlink > 1:  # killed between link and unlink: the contents already have their segment name
            os.close(fd)
            os.unlink(path)
            fd = os.open(path, _APPEND, FILE_MODE)
            info = os.fstat(fd)
        if info.st_size and os.pread(fd, 1, info.st_size - 1) != b"\n":
            _cut_torn_tail(fd, info.st_size)
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _cut_torn_tail(fd: int, size: int) -> None:
    """Truncate an unfinished last line (a write interrupted by SIGKILL, never answered) back to the last newline."""
    start = max(0, size - _TAIL_BYTES)
    while True:
        chunk = os.pread(fd, size - start, start)
        end = chunk.rfind(b"\n")
        if end >= 0:
            os.ftruncate(fd, start + end + 1)
            break
        if start == 0:
            os.ftruncate(fd, 0)
            break
        start = max(0, start - _TAIL_BYTES)
    os.fsync(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
