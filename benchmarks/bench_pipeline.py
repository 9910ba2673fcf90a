"""Benchmark: `credit-scorer run` end to end (train → gate → deploy) and per step, with peak memory.

Runs the real CLI in a subprocess, in a fresh working directory with its own ZenML
state: the first (cold) run includes creating ZenML's local database; the following
(warm) runs are what a user sees day to day. Per-step times come from the CLI's own
progress lines. Peak memory is the maximum resident set size of the run's process.

    .venv/bin/python benchmarks/bench_pipeline.py [--runs 3]

Writes benchmarks/results/pipeline.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEP_LINE = re.compile(r"✓ (\w+)\s+([\d.]+) s")
RESULTS = Path(__file__).parent / "results" / "pipeline.json"


REPO = Path(__file__).resolve().parents[1]
DEMO_GATE = {
    "SUBMITTER": "Ada Lovelace",
    "TESTER": "Quinn Tester",
    "DEPLOY_APPROVAL": "y",
    "APPROVER": "Jane Doe",
    "APPROVAL_RATIONALE": "benchmark run",
}


def one_run(workdir: Path, cli: str) -> dict[str, object]:
    env = {
        **os.environ,
        **DEMO_GATE,
        "COLUMNS": "200",
        "ZENML_CONFIG_PATH": str(workdir / ".zenml-state"),
        "CREDIT_SCORER_STORE": str(workdir / "compliance"),
        "CREDIT_SCORER_PEOPLE": str(REPO / "conf" / "people.yaml"),
        "CREDIT_SCORER_ANNEX_FACTS": str(REPO / "conf" / "annex_iv_facts.yaml"),
        "CREDIT_SCORER_KEY": str(workdir / "ledger_key.pem"),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([cli, "run"], cwd=workdir, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.exit(f"credit-scorer run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    steps = {name: float(sec) for name, sec in STEP_LINE.findall(proc.stdout)}
    auc = re.search(r"│ AUC\s+│\s+([\d.]+)", proc.stdout)
    return {
        "wall_seconds": wall,
        "steps_seconds": steps,
        "peak_rss_mib": max(peak_kib, before) / 1024,
        "auc": float(auc.group(1)) if auc else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="warm runs after the cold one")
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("credit-scorer"))
    with tempfile.TemporaryDirectory(prefix="credit-scorer-bench-") as tmp:
        workdir = Path(tmp)
        try:
            cold = one_run(workdir, cli)
            warm = [one_run(workdir, cli) for _ in range(args.runs)]
        finally:
            subprocess.run([cli, "deployments", "stop", "--store", str(workdir / "compliance")], check=False)
    step_names = list(cold["steps_seconds"])  # type: ignore[arg-type]
    median_steps = {
        name: statistics.median(r["steps_seconds"][name] for r in warm)  # type: ignore[index]
        for name in step_names
    }
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "cold_wall_seconds": cold["wall_seconds"],
        "warm_wall_seconds_median": statistics.median(r["wall_seconds"] for r in warm),  # type: ignore[misc]
        "warm_wall_seconds_all": [r["wall_seconds"] for r in warm],
        "steps_seconds_median": median_steps,
        "steps_total_seconds": sum(median_steps.values()),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in [cold, *warm]),  # type: ignore[type-var]
        "auc": cold["auc"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"| measure ({summary['machine']}) | value |")
    print("|---|---|")
    print(f"| `credit-scorer run`, first run (creates ZenML state) | {summary['cold_wall_seconds']:.1f} s |")
    warm_median = summary["warm_wall_seconds_median"]
    print(f"| `credit-scorer run`, warm (median of {args.runs}) | {warm_median:.1f} s |")
    for name, seconds in median_steps.items():
        print(f"| step `{name}` | {seconds:.2f} s |")
    print(f"| sum of steps | {summary['steps_total_seconds']:.1f} s |")
    print(f"| peak memory (RSS) | {summary['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
