"""Real scoring-server processes for the tests: start one, wait until it answers, talk to it over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from credit_scorer.adapters.local_processes import free_port

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "conf" / "reason_codes.yaml"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Server:
    """A ``python -m credit_scorer.serving`` process on a free loopback port (stdin a pipe we hold)."""

    def __init__(self, model_file: Path, folder: Path, release_id: str, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        self._output = ""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "credit_scorer.serving",
                "--model",
                str(model_file),
                "--release-id",
                release_id,
                "--port",
                str(self.port),
                "--decision-log",
                str(folder),
                "--reason-codes",
                str(TABLE),
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """The first ``/health`` answer; AssertionError (with the server's output) if it exits or never answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with NO_PROXY.open(f"{self.url}/health", timeout=1) as response:
                    return dict(json.loads(response.read()))
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    if self.process.poll() is None:
                        self.process.kill()
                    raise AssertionError(f"the server did not start: {self.output()}") from None
                time.sleep(0.05)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def call(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One request: (status, decoded JSON)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with NO_PROXY.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        """The server's stdout and stderr (once it has exited)."""
        if self.process.poll() is None:
            return "(still running)"
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                self._output += stream.read().decode(errors="replace")
                stream.close()
        return self._output

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def log_lines(folder: Path) -> list[dict[str, Any]]:
    """Every complete line of every decision-log file in ``folder``, parsed (a torn last line is left out)."""
    lines = []
    for path in sorted(folder.glob("*.jsonl")):
        data = path.read_bytes()
        lines += [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]
    return lines
