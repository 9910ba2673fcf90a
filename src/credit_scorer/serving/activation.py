"""The activation gate: a scoring server that may decide only once its release's approval is recorded.

A deployer can start the server before the approval is final (``--activation-ledger FILE
--activation-token TOKEN``, see :mod:`credit_scorer.serving.__main__`). The server then starts
*inactive*: the predict routes answer 503 and log nothing, ``/health`` and ``/model`` say
``"active": false``. An :class:`ActivationWatcher` reads FILE — a JSON-lines file that only
grows — every :data:`POLL_SECONDS` (20 ms) from where it stopped, complete lines only (a
missing file means nothing yet), for a line whose JSON object has ``"activates": TOKEN``.
When one appears the gate opens for good and the watcher stops.

The watcher also reads the server's stdin: EOF while still inactive means the deploying
process died, so the server checks FILE once more and, if still inactive, gives up (the
server exits 5). Once active, EOF is ignored: the server outlives its parent. Inactive for
longer than the timeout: it gives up as well.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.02
ACTIVATES_KEY = "activates"


class ActivationGate:
    """Open (active) from the start without a ledger; with one, closed until the ledger activates it."""

    def __init__(self, ledger: Path | None = None, token: str | None = None) -> None:
        if (ledger is None) != (token is None):
            raise ValueError("an activation ledger and an activation token go together: give both or neither")
        if token is not None and not token.strip():
            raise ValueError("the activation token is empty")
        self.ledger = Path(ledger) if ledger is not None else None
        self.token = token
        self.active = ledger is None  # read on every predict request: a plain attribute
        self._offset = 0
        self._lock = threading.Lock()

    def poll(self) -> bool:
        """Read the ledger's new complete lines; True once one of them (or an earlier one) activates the server.

        OSError when the ledger exists but cannot be read.
        """
        with self._lock:
            if self.active or self.ledger is None:
                return True
            try:
                size = os.stat(self.ledger).st_size
            except FileNotFoundError:
                return False  # nothing recorded yet
            if size < self._offset:  # the file was replaced by a shorter one: read it from the start
                self._offset = 0
            if size == self._offset:
                return False
            with open(self.ledger, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read(size - self._offset)
            end = data.rfind(b"\n")
            if end < 0:
                return False  # a line still being written: wait for its newline
            self._offset += end + 1
            if any(self._activates(line) for line in data[:end].split(b"\n")):
                self.active = True
            return self.active

    def _activates(self, line: bytes) -> bool:
        try:
            entry = json.loads(line)
        except ValueError:
            return False
        return isinstance(entry, dict) and entry.get(ACTIVATES_KEY) == self.token


class ActivationWatcher:
    """Polls the gate's ledger until it opens; calls ``give_up(reason)`` on stdin EOF or timeout while inactive."""

    def __init__(self, gate: ActivationGate, timeout: float, give_up: Callable[[str], None], stdin_fd: int = 0) -> None:
        self.gate = gate
        self.timeout = timeout
        self.give_up = give_up
        self.stdin_fd = stdin_fd
        self._eof = threading.Event()
        self._wake = threading.Event()
        self._warned = False

    def start(self) -> None:
        """Start the stdin reader and the ledger poller (daemon threads)."""
        threading.Thread(target=self._read_stdin, name="activation-stdin", daemon=True).start()
        threading.Thread(target=self._watch, name="activation-watch", daemon=True).start()

    def _read_stdin(self) -> None:
        try:
            while os.read(self.stdin_fd, 65536):
                pass
        except OSError:
            pass  # no usable stdin: the same as a closed one
        self._eof.set()
        self._wake.set()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            eof = self._eof.is_set()  # seen before this poll: the poll is the "once more" after EOF
            if self._poll():
                return
            if eof:
                self.give_up("its stdin was closed (the deploying process ended) before its approval was recorded")
                return
            if time.monotonic() >= deadline:
                self.give_up(f"its approval was not recorded within {self.timeout:g} s")
                return
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _poll(self) -> bool:
        try:
            return self.gate.poll()
        except OSError as exc:
            if not self._warned:
                self._warned = True
                sys.stderr.write(f"warning: activation ledger {self.gate.ledger} cannot be read: {exc}\n")
            return False
