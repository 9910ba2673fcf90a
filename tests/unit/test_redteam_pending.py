"""Red team: `credit-scorer pending` must not list a dead terminal as asking (pid reuse, odd pids)."""

from __future__ import annotations

import os
import socket

import pytest

from credit_scorer.pipelines.run import _process_alive


def test_a_reused_pid_is_not_the_terminal_that_asked() -> None:
    """A run killed while asking stays RUNNING in ZenML; once its pid is reused by any later process,
    `pending` listed it as asking at a terminal forever. This process started long after ``since``."""
    asking = {"pid": os.getpid(), "host": socket.gethostname(), "since": "2001-01-01T00:00:00Z"}
    assert _process_alive(asking) is False


@pytest.mark.parametrize("pid", [0, -1, True])
def test_a_pid_that_names_no_single_process_is_not_alive(pid: object) -> None:
    """os.kill(0, 0) and os.kill(-1, 0) signal process groups and succeed; True is the int 1 (init)."""
    assert _process_alive({"pid": pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00Z"}) is False
