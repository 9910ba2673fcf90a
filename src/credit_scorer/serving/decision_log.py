"""The decision log (EU AI Act Art. 12): one JSON line per scored applicant, written off the request path.

Request handlers put a small tuple on a queue (a microsecond); a writer thread turns
entries into JSON lines, appends them to ``decisions.jsonl`` in the log folder and rotates
the file by size: the full file is renamed ``decisions-<UTC time>-<n>.jsonl`` and never
written again, nothing is deleted. :meth:`DecisionLog.close` (called on clean shutdown)
drains the queue, flushes and fsyncs, so no accepted entry is lost.

Entries wait at most DRAIN_SECONDS (20 ms) in memory. Each line: ``request_id``,
``timestamp`` (UTC, milliseconds), ``release_id``,
``model_sha256``, ``input_sha256`` (sha256 of the applicant's validated values as
little-endian float64 in the order of ``/model``'s ``request_fields``),
``probability_of_default``, ``decision``, ``reasons`` (codes) and ``reason_codes_version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

LOG_NAME = "decisions.jsonl"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 0.02
_STOP = object()


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
    """Append-only, size-rotated JSON-lines log fed through a queue by a writer thread."""

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
        self._prefix = (
            f'"release_id":{json.dumps(release_id)},"model_sha256":"{model_sha256}",'
            f'"reason_codes_version":{json.dumps(reason_codes_version)}'
        )
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._handle = open(self.path, "ab")  # noqa: SIM115 - held open by the writer thread
        self._size = self._handle.tell()
        self._closed = False
        self._error: BaseException | None = None
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        """Queue a request's decisions (called on the request path; does no I/O)."""
        if self._closed:
            raise RuntimeError("the decision log is closed")
        self._queue.put(batch)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, flush and fsync, stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._wake.set()
        self._thread.join(timeout)
        if self._error is not None:
            raise RuntimeError(f"the decision log writer failed: {self._error}") from self._error

    @property
    def healthy(self) -> bool:
        """False once the writer has failed (disk full, permissions)."""
        return self._error is None and self._thread.is_alive()

    # -- writer thread -------------------------------------------------------------
    def _run(self) -> None:
        """Every DRAIN_SECONDS (or at once on close), write everything queued in one go.

        Waking once per interval instead of once per entry keeps the writer from taking the
        GIL away from the request thread thousands of times a second.
        """
        try:
            stop = False
            while not stop:
                self._wake.wait(DRAIN_SECONDS)
                chunks = []
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                    else:
                        chunks.append(self._lines(item))  # type: ignore[arg-type]
                for chunk in chunks:  # one request's lines at a time, so rotation falls between requests
                    self._write(chunk)
                if chunks:
                    self._handle.flush()
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        except BaseException as exc:
            self._error = exc

    def _lines(self, batch: Batch) -> bytes:
        stamp = (
            datetime.fromtimestamp(batch.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(batch.at * 1000) % 1000:03d}Z"
        )
        n = len(batch.proba)
        values = np.ascontiguousarray(batch.values, dtype="<f8")
        width = values.shape[1] * values.itemsize
        raw = values.tobytes()  # one copy; each row's hash reads its slice (plain lists: no numpy scalars per row)
        head = f'","timestamp":"{stamp}",{self._prefix},"input_sha256":"'
        sha256 = hashlib.sha256
        out = []
        rows = zip(batch.proba.tolist(), batch.declined.tolist(), batch.reasons, strict=True)
        for i, (proba, declined, codes) in enumerate(rows):
            request_id = batch.request_id if n == 1 else f"{batch.request_id}:{i}"
            digest = sha256(raw[i * width : (i + 1) * width]).hexdigest()
            decision = "decline" if declined else "approve"
            listed = json.dumps(codes) if codes else "[]"
            out.append(
                f'{{"request_id":"{request_id}{head}{digest}",'
                f'"probability_of_default":{proba!r},"decision":"{decision}","reasons":{listed}}}\n'
            )
        return "".join(out).encode()

    def _write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._handle.write(data)
        self._size += len(data)

    def _rotate(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        n = 1
        while (target := self.folder / f"decisions-{stamp}-{n}.jsonl").exists():
            n += 1
        os.link(self.path, target)  # never overwrites: fails if the name exists
        os.unlink(self.path)
        self._handle = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
