"""Fresh clone → live endpoint, as a new user meets it: `git clone`, then `make run`, with an empty download cache.

Clones this repository's HEAD into a temporary folder, points uv at an empty cache folder (nothing downloaded
before is reused), and times the two parts of the first `make run`: building `.venv` from requirements.lock
(the Makefile's stamp target) and the run itself, to the live URL. Then a second `make run` (warm). Stops the
endpoints and removes the folder; results go to benchmarks/results/fresh_clone.json.

    python3 benchmarks/bench_fresh_clone.py [--runs N]

Needs the network to the package registry (that is what it measures) and Python 3.11; runs in about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fresh_clone.json"


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and combined output of a command that must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout + done.stderr


def received_bytes() -> int | None:
    """Bytes received on the machine's network interfaces so far (Linux), to count what the install downloads."""
    try:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    return sum(int(line.split(":", 1)[1].split()[0]) for line in lines if not line.strip().startswith("lo:"))


def one_fresh_clone(env: dict[str, str]) -> dict[str, float | str | None]:
    with tempfile.TemporaryDirectory(prefix="credit-scorer-fresh-") as tmp:
        clone, cache = Path(tmp) / "clone", Path(tmp) / "uv-cache"
        run_env = dict(env, UV_CACHE_DIR=str(cache))
        started = time.perf_counter()
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        before = received_bytes()
        install, out = timed(["make", ".venv/.installed-stamp"], clone, run_env)
        after = received_bytes()
        compiled = re.search(r"compiled the bytecode .* in ([0-9.]+) s", out)
        first, out = timed(["make", "run"], clone, run_env)
        total = time.perf_counter() - started
        url = re.search(r"deployed release \S+ at (http://\S+?);", out)
        if url is None:
            sys.exit(f"make run did not print a live URL:\n{out}")
        subprocess.run([str(clone / ".venv/bin/credit-scorer"), "deployments", "stop"], cwd=clone, env=run_env,
                       capture_output=True)
        second, _ = timed(["make", "run"], clone, run_env)
        subprocess.run([str(clone / ".venv/bin/credit-scorer"), "deployments", "stop"], cwd=clone, env=run_env,
                       capture_output=True)
        return {
            "clone_to_live_s": round(total, 1),
            "install_s": round(install, 1),
            "compile_bytecode_s": float(compiled.group(1)) if compiled else None,
            "first_run_s": round(first, 1),
            "second_run_s": round(second, 1),
            "downloaded_mib": round((after - before) / 2**20) if before is not None and after is not None else None,
            "venv_mib": round(sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file()) / 2**20),
            "url": url.group(1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh clones to measure (median reported)")
    args = parser.parse_args()
    if shutil.which("make") is None or shutil.which("git") is None:
        sys.exit("needs git and make")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "CREDIT_SCORER_"))}
    results = []
    for number in range(1, args.runs + 1):
        result = one_fresh_clone(env)
        print(f"fresh clone {number}: {json.dumps(result)}", flush=True)
        results.append(result)
    keys = [k for k in results[0] if k != "url" and results[0][k] is not None]
    summary = {k: statistics.median(float(r[k]) for r in results if r[k] is not None) for k in keys}  # type: ignore[arg-type]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": results, "median": summary}, indent=2) + "\n")
    print(f"median of {len(results)}: {json.dumps(summary)}\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
