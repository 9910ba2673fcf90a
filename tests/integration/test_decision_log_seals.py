"""Sealed segments: every finished decision-log file gets ``<segment>.seal.json`` naming its exact bytes.

A segment is finished when the log rotates it (``reason: rotation``) and at clean shutdown,
when the live ``decisions.jsonl`` is renamed like a rotated segment (``reason: shutdown``) so
that a later server for the same release never appends to a sealed file. The seals are
checked against an independent recomputation (sha256, line and byte counts, first and last
request ids and times) and the files against their mode (owner only).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from credit_scorer.domain.model import TrainedModel
from credit_scorer.serving.app import create_app
from credit_scorer.serving.decision_log import (
    LOG_NAME,
    Batch,
    DecisionLog,
    read_seal,
    retire_live_file,
    seal_segment,
)

from .conftest import train_on_bundled_data
from .serving_process import TABLE, Server
from .test_serving import asgi

RELEASE = "AI-REL-5ea10001"
SEGMENT = re.compile(r"decisions-(\d{8}T\d{6}Z)-(\d+)\.jsonl")
SEAL_KEYS = [
    "segment",
    "sha256",
    "lines",
    "bytes",
    "first_request_id",
    "last_request_id",
    "first_at",
    "last_at",
    "release_id",
    "model_sha256",
    "reason",
    "sealed_at",
]


@pytest.fixture(scope="module")
def trained() -> tuple[TrainedModel, pd.DataFrame]:
    """A 20-tree model on the bundled data, and 40 rows of its test split."""
    return train_on_bundled_data(n_estimators=20, test_rows=40)


def applicant(model: TrainedModel, rows: pd.DataFrame, i: int) -> dict[str, Any]:
    return {f: rows[f].to_numpy()[i].item() for f in model.request_fields}


def segments(folder: Path) -> list[Path]:
    """The sealed-or-not segments of a folder, oldest first (by the time and number in their names)."""
    named = [(SEGMENT.fullmatch(p.name), p) for p in folder.iterdir()]
    return [p for _, _, p in sorted((m.group(1), int(m.group(2)), p) for m, p in named if m)]


def check_seal(segment: Path, model_sha256: str, reason: str) -> list[dict[str, Any]]:
    """The seal of ``segment`` against the file, recomputed here; returns the segment's lines."""
    seal = read_seal(segment)
    assert seal is not None, f"{segment.name} has no seal"
    assert json.loads(segment.with_name(segment.name + ".seal.json").read_bytes()) == seal
    data = segment.read_bytes()
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert list(seal) == SEAL_KEYS
    assert seal["segment"] == segment.name
    assert seal["sha256"] == hashlib.sha256(data).hexdigest()
    assert seal["bytes"] == len(data) == segment.stat().st_size
    assert seal["lines"] == len(lines) == data.count(b"\n") > 0
    assert (seal["first_request_id"], seal["first_at"]) == (lines[0]["request_id"], lines[0]["timestamp"])
    assert (seal["last_request_id"], seal["last_at"]) == (lines[-1]["request_id"], lines[-1]["timestamp"])
    assert (seal["release_id"], seal["model_sha256"], seal["reason"]) == (RELEASE, model_sha256, reason)
    assert seal["sealed_at"].endswith("Z")
    assert abs(datetime.fromisoformat(seal["sealed_at"]).timestamp() - time.time()) < 300
    for path in (segment, segment.with_name(segment.name + ".seal.json")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    return lines


def test_rotated_and_shut_down_segments_are_sealed_and_match_their_bytes(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    scoring = create_app(model_file, RELEASE, decision_log_dir=tmp_path, reason_codes=TABLE, log_max_bytes=4096)
    batch = json.dumps({"applicants": [applicant(model, rows, i) for i in range(40)]}).encode()
    for n in range(10):
        status, _ = asgi(scoring, "POST", "/predict/batch", batch, headers={"X-Request-ID": f"s{n}"})
        assert status == 200
    scoring.state.decision_log.close()

    assert not (tmp_path / LOG_NAME).exists()  # the live file became a segment at shutdown
    found = segments(tmp_path)
    assert len(found) > 5
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in found] + [p.name + ".seal.json" for p in found]
    )  # no temporary files left
    logged = []
    for i, segment in enumerate(found):
        logged += check_seal(segment, model.sha256, "shutdown" if i == len(found) - 1 else "rotation")
    assert [line["request_id"] for line in logged] == [f"s{n}:{i}" for n in range(10) for i in range(40)]


def test_seal_segment_seals_a_killed_servers_file_once(tmp_path: Path) -> None:
    """Other code seals what a killed server left: rename the live file, then seal it; never twice."""
    log = DecisionLog(tmp_path, RELEASE, "cd" * 32, "2026.1")
    values = np.ones((1, 3))
    for n in range(3):
        log.write(Batch(f"r{n}", time.time(), values, np.array([0.2]), np.array([False]), [[]]))
    segment = retire_live_file(tmp_path)  # as after a SIGKILL: nobody writes to it any more
    assert segment is not None and SEGMENT.fullmatch(segment.name)
    seal = seal_segment(segment, RELEASE, "cd" * 32, "recovery")
    assert seal == read_seal(segment)
    check_seal(segment, "cd" * 32, "recovery")
    assert (seal["lines"], seal["first_request_id"], seal["last_request_id"]) == (3, "r0", "r2")
    before = segment.with_name(segment.name + ".seal.json").read_bytes()
    with pytest.raises(FileExistsError, match="already sealed"):
        seal_segment(segment, RELEASE, "cd" * 32, "recovery")
    assert segment.with_name(segment.name + ".seal.json").read_bytes() == before  # never overwritten
    log.close()
    assert segments(tmp_path) == [segment]  # the killed server's file was already renamed: nothing else to seal

    empty = tmp_path / "decisions-20260101T000000Z-1.jsonl"
    empty.touch()
    nothing = seal_segment(empty, RELEASE, "cd" * 32, "recovery")
    assert (nothing["lines"], nothing["bytes"], nothing["first_request_id"], nothing["last_at"]) == (0, 0, None, None)
    assert read_seal(tmp_path / "decisions-20260101T000000Z-2.jsonl") is None


def test_rotation_never_overwrites_an_existing_segment(tmp_path: Path) -> None:
    now = time.time()
    taken = [f"decisions-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now + dt))}-1.jsonl" for dt in range(-1, 30)]
    for name in taken:  # the names a rotation in the next 30 s would try first
        (tmp_path / name).write_bytes(b'{"request_id":"older"}\n')
    log = DecisionLog(tmp_path, RELEASE, "cd" * 32, "2026.1", max_bytes=500)  # a line is ~430 bytes
    for n in range(3):
        log.write(Batch(f"r{n}", time.time(), np.ones((1, 3)), np.array([0.2]), np.array([False]), [[]]))
    log.close()
    assert all((tmp_path / name).read_bytes() == b'{"request_id":"older"}\n' for name in taken)
    new = [p for p in segments(tmp_path) if p.name not in taken]
    assert [json.loads(p.read_bytes())["request_id"] for p in new] == ["r0", "r1", "r2"]
    assert all(read_seal(p) is not None for p in new) and all(read_seal(tmp_path / name) is None for name in taken)


def test_a_half_written_line_left_by_a_killed_server_is_cut_before_appending(tmp_path: Path) -> None:
    one = b'{"request_id":"a"}\n'
    (tmp_path / LOG_NAME).write_bytes(one + b'{"request_id":"b","timest')  # a write() cut short by SIGKILL
    log = DecisionLog(tmp_path, RELEASE, "cd" * 32, "2026.1")
    log.write(Batch("c", time.time(), np.ones((1, 3)), np.array([0.2]), np.array([False]), [[]]))
    log.close()
    [segment] = segments(tmp_path)
    assert [json.loads(line)["request_id"] for line in segment.read_bytes().splitlines()] == ["a", "c"]


def test_a_live_file_already_renamed_by_an_interrupted_rotation_is_not_appended_to(tmp_path: Path) -> None:
    """Killed between the rotation's link and unlink: the live name and the segment are one file."""
    (tmp_path / LOG_NAME).write_bytes(b'{"request_id":"a"}\n')
    os.link(tmp_path / LOG_NAME, tmp_path / "decisions-20260101T000000Z-1.jsonl")
    log = DecisionLog(tmp_path, RELEASE, "cd" * 32, "2026.1")
    log.write(Batch("b", time.time(), np.ones((1, 3)), np.array([0.2]), np.array([False]), [[]]))
    log.close()
    first, second = segments(tmp_path)
    assert first.read_bytes() == b'{"request_id":"a"}\n'
    assert [json.loads(line)["request_id"] for line in second.read_bytes().splitlines()] == ["b"]


def test_a_later_server_never_appends_to_a_sealed_segment(
    model_file: Path, model: TrainedModel, rows: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "log"
    for run, count in enumerate((5, 3)):
        server = Server(model_file, folder, RELEASE)
        try:
            server.wait_ready()
            for i in range(count):
                headers = {"X-Request-ID": f"run{run}-{i}"}
                status, _ = server.call("POST", "/predict", applicant(model, rows, i), headers)
                assert status == 200
            os.kill(server.process.pid, signal.SIGTERM)
            assert server.wait_exit() == 0, server.output()
        finally:
            server.kill()
        assert not (folder / LOG_NAME).exists()
        found = segments(folder)
        assert len(found) == run + 1
        for segment in found:  # the first server's segment is unchanged after the second server ran
            check_seal(segment, model.sha256, "shutdown")
        assert [line["request_id"] for line in check_seal(found[-1], model.sha256, "shutdown")] == [
            f"run{run}-{i}" for i in range(count)
        ]
