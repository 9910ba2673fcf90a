"""Profile: where the CPU time of a 1,000-row ``/predict/batch`` request goes, stage by stage.

Runs each stage of the scoring service's batch path in-process on the same 1,000
test-split applicants as ``bench_serving.py`` (compact ``columns`` + ``rows`` form), one
thread at a time, and reports CPU milliseconds per 1,000 rows (``time.thread_time``, so a
busy machine changes the numbers little). The stages are the service's own functions:

- parse: ``orjson.loads`` of the request body;
- check: ``InputContract.check_rows`` (types, ranges, codes; mapped codes);
- score: ``LoadedModel.matrix`` + ``Booster.predict`` (one thread);
- reasons: ``ReasonCoder.reasons`` = LightGBM TreeSHAP (``pred_contrib``) of the declined rows (one thread);
- respond: the results list and ``orjson.dumps``;
- log lines: ``DecisionLog._lines`` (input sha256 and one JSON line per decision; the writer thread's work).

From the sum it derives the ceiling on this machine's cores: rows/s ≤ cores × 1,000 / CPU-ms
per 1,000 rows, before any HTTP work. It does the same for a batch with no declines.

    .venv/bin/python benchmarks/profile_batch.py [--repeat 30]

Writes benchmarks/results/batch_profile.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import payloads, train_default_model

from credit_scorer.serving.app import load_model
from credit_scorer.serving.decision_log import Batch, DecisionLog
from credit_scorer.serving.reasons import ReasonCoder, load_reason_table, reason_table_path

RESULTS = Path(__file__).parent / "results" / "batch_profile.json"


def cpu_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU milliseconds of one call, after a warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        times.append((time.thread_time() - start) * 1000)
    return statistics.median(times)


def profile(body: dict[str, Any], loaded: Any, coder: ReasonCoder, log: DecisionLog, repeat: int) -> dict[str, Any]:
    raw = orjson.dumps(body)
    threshold = loaded.model.decision_threshold
    parsed = orjson.loads(raw)
    values, errors = loaded.contract.check_rows(parsed["columns"], parsed["rows"])
    assert values is not None, errors
    matrix = loaded.matrix(values)
    proba = np.asarray(loaded.booster.predict(matrix, num_threads=1))
    declined = proba >= threshold
    index = np.flatnonzero(declined)
    found = coder.reasons(loaded.booster, matrix[index], 1) if index.size else []
    reasons: list[list[dict[str, object]]] = [[] for _ in range(len(proba))]
    for i, r in zip(index, found, strict=True):
        reasons[i] = r
    codes = [[str(r["code"]) for r in rs] for rs in reasons]

    def respond() -> bytes:
        results = [
            {"probability_of_default": p, "decision": "decline" if d else "approve", "reasons": r}
            for p, d, r in zip(proba.tolist(), declined.tolist(), reasons, strict=True)
        ]
        return orjson.dumps({"request_id": "x", "results": results})

    stages = {
        "parse": cpu_ms(lambda: orjson.loads(raw), repeat),
        "check": cpu_ms(lambda: loaded.contract.check_rows(parsed["columns"], parsed["rows"]), repeat),
        "score": cpu_ms(lambda: loaded.booster.predict(loaded.matrix(values), num_threads=1), repeat),
        "reasons": cpu_ms(lambda: coder.reasons(loaded.booster, matrix[index], 1), repeat) if index.size else 0.0,
        "respond": cpu_ms(respond, repeat),
        "log lines": cpu_ms(
            lambda: log._lines(Batch("x", time.time(), values, proba, declined, codes)),
            repeat,
        ),
    }
    total = sum(stages.values())
    cores = os.cpu_count() or 1
    return {
        "rows": len(proba),
        "declined": int(index.size),
        "cpu_ms_per_1000_rows": {k: round(v * 1000 / len(proba), 3) for k, v in stages.items()},
        "total_cpu_ms_per_1000_rows": round(total * 1000 / len(proba), 2),
        "reasons_cpu_ms_per_declined_row": round(stages["reasons"] / index.size, 3) if index.size else None,
        "ceiling_rows_per_s_on_all_cores": round(cores * len(proba) * 1000 / total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30, help="calls per stage (the median is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-batch-") as tmp:
        work = Path(tmp)
        print("training the default model ...", flush=True)
        model_path, model, test = train_default_model(work)
        bodies = payloads(model, test)["scoring"]
        loaded = load_model(model_path)
        table_path = reason_table_path(None)
        coder = ReasonCoder(load_reason_table(table_path), loaded.model.feature_names, table_path)
        log = DecisionLog(work / "log", "AI-REL-profile", loaded.sha256, coder.version)
        try:
            cases = {
                "test split (as it comes)": profile(bodies["batch"], loaded, coder, log, args.repeat),
                "approved applicants only": profile(bodies["batch_approved"], loaded, coder, log, args.repeat),
            }
        finally:
            log.close()
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "trees": loaded.booster.num_trees(),
        "cases": cases,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    stages = list(next(iter(cases.values()))["cpu_ms_per_1000_rows"])
    print(f"\n{summary['machine']}; {summary['when']}; model of {summary['trees']} trees\n")
    print("| 1,000-row batch | declined | " + " | ".join(stages) + " | total CPU ms | ceiling rows/s |")
    print("|---|---|" + "---|" * len(stages) + "---|---|")
    for name, case in cases.items():
        cells = " | ".join(f"{case['cpu_ms_per_1000_rows'][s]:.2f}" for s in stages)
        print(
            f"| {name} | {case['declined']} | {cells} | {case['total_cpu_ms_per_1000_rows']:.1f} | "
            f"{case['ceiling_rows_per_s_on_all_cores']:,} |"
        )
    per_row = cases["test split (as it comes)"]["reasons_cpu_ms_per_declined_row"]
    print(f"\nTreeSHAP per declined row: {per_row} CPU ms")


if __name__ == "__main__":
    main()
