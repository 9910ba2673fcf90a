"""The local deployer's processes: ports on loopback, which process is a release's server, stopping one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SERVING_MODULE = "credit_scorer.serving"
HOST = "127.0.0.1"

# Servers started by this process, kept so they are reaped (no zombies, no ResourceWarning).
STARTED: dict[int, subprocess.Popen[bytes]] = {}


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when ``host:port`` can be bound for listening (as uvicorn will, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def serving_process_alive(pid: int, release_id: str) -> bool:
    """True when ``pid`` is running and is the scoring server of ``release_id`` (not a reused pid)."""
    if pid <= 0 or not running(pid):
        return False
    argv = cmdline(pid)
    return argv is not None and SERVING_MODULE in argv and release_id in argv


def terminate(pid: int, timeout: float = 5.0) -> bool:
    """SIGTERM ``pid``, SIGKILL it after ``timeout`` seconds; True once it has exited."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not running(pid):
                return True
            time.sleep(0.05)
    return not running(pid)


def running(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (reaping it if it is our exited child)."""
    child = STARTED.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del STARTED[pid]
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in {"Z", "X"}


def kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a server we started and reap it."""
    try:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)
    finally:
        if process.returncode is not None:
            STARTED.pop(process.pid, None)
