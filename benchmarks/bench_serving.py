"""Benchmark: the scoring service against `mlflow models serve` and a bare FastAPI + booster route, in one run.

All three serve the same LightGBM booster (the default model trained on the bundled data)
with one uvicorn/gunicorn worker on loopback; wrk (Debian's package) drives them:

- serial: one connection, one request at a time (latency p50 / p99);
- single-row throughput: 4 connections;
- batch: 1,000-row requests, 2 connections (rows/s = requests/s × 1,000); the scoring
  service gets the compact form (``columns`` + ``rows``, like MLflow's ``dataframe_split``
  and the bare route's ``rows``) and, measured separately, a list of applicant objects;
- a 60 s load on the scoring service at full single-row rate, sampling its RSS each second.

The scoring service runs as deployed: input validation against the dataset spec, reason
codes for declines, the decision log written by its thread. Its single-row requests use a
*declined* applicant (reason codes computed: the slow case); an approved one is measured too.
MLflow runs from its own venv (``.venv-mlflow``, built from
``benchmarks/serving/requirements-mlflow.txt`` when missing), never from the project's.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 10] [--load-seconds 60] [--skip-mlflow]

Writes benchmarks/results/serving.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).parent / "serving"
RESULTS = Path(__file__).parent / "results" / "serving.json"
MLFLOW_VENV = REPO / ".venv-mlflow"
BATCH_ROWS = 1000
MIXED_ROWS = 1000
RELEASE_ID = "AI-REL-be4c0000"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------------------
# Model and payloads
# ---------------------------------------------------------------------------
def train_default_model(folder: Path) -> tuple[Path, Any, Any]:
    """The default model on the bundled data (no ZenML), saved as a model file; also its test split."""
    from credit_scorer.domain import data, train
    from credit_scorer.domain.config import load_dataset_spec, training_config

    spec = load_dataset_spec()
    config = training_config()
    frame, _ = data.load_dataset(spec)
    clean, _ = data.validate_dataset(frame, spec)
    train_part, valid_part, test_part, _ = data.split_dataset(clean, spec, config)
    model = train.train_model(train_part, valid_part, spec, config)
    path = folder / f"{model.sha256}.json"
    path.write_bytes(model.to_bytes())
    return path, model, test_part.reset_index(drop=True)


def payloads(model: Any, test: Any) -> dict[str, dict[str, Any]]:
    """Request bodies per server: a declined and an approved applicant, and a 1,000-row batch."""
    from credit_scorer.domain.train import model_matrix

    fields = model.request_fields
    proba = model.predict_default_proba(test)
    declined = int(proba.argmax())
    matrix = model_matrix(test, model.input_columns, model.derived_features)

    def applicant(i: int) -> dict[str, Any]:
        return {f: test[f].to_numpy()[i].item() for f in fields}

    batch = list(range(BATCH_ROWS))
    approved_rows = [int(i) for i in np.flatnonzero(proba < model.decision_threshold)[:BATCH_ROWS]]
    mixed = list(range(len(test)))[:MIXED_ROWS]  # the test split as it comes: ~11 % declines

    def compact(rows: list[int]) -> dict[str, Any]:
        return {"columns": list(fields), "rows": [[test[f].to_numpy()[i].item() for f in fields] for i in rows]}

    def mlflow_rows(rows: list[int]) -> dict[str, Any]:
        return {"dataframe_split": {"columns": model.feature_names, "data": matrix[rows].tolist()}}

    return {
        "scoring": {
            "declined": applicant(declined),
            "mixed": [applicant(i) for i in mixed],
            "batch": compact(batch),
            "batch_approved": compact(approved_rows),
            "batch_objects": {"applicants": [applicant(i) for i in batch]},
        },
        "bare": {
            "declined": {"row": matrix[declined].tolist()},
            "mixed": [{"row": matrix[i].tolist()} for i in mixed],
            "batch": {"rows": matrix[batch].tolist()},
            "batch_approved": {"rows": matrix[approved_rows].tolist()},
        },
        "mlflow": {
            "declined": mlflow_rows([declined]),
            "mixed": [mlflow_rows([i]) for i in mixed],
            "batch": mlflow_rows(batch),
            "batch_approved": mlflow_rows(approved_rows),
        },
    }


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {process.returncode}")
        try:
            with NO_PROXY.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ensure_mlflow_venv() -> Path:
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        print(f"creating {MLFLOW_VENV} (MLflow for this benchmark only) ...", flush=True)
        # Hashed lock, from the registry only, by .venv's uv (the same way the Makefile builds .venv).
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(MLFLOW_VENV)], check=True)
        uv = Path(sys.executable).parent / "uv"
        subprocess.run(
            [str(uv), "pip", "sync", "--quiet", "--python", str(MLFLOW_VENV / "bin" / "python"), "--require-hashes",
             "--no-build", str(HERE / "requirements-mlflow.txt")],
            check=True,
        )
    return mlflow


# ---------------------------------------------------------------------------
# wrk
# ---------------------------------------------------------------------------
def wrk(url: str, body: Any, connections: int, seconds: int, work: Path) -> dict[str, float]:
    """wrk POSTing ``body`` (or, for a list, each body in turn); parsed results."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua(body, work)), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def lua(body: Any, work: Path) -> Path:
    """A wrk script sending the bodies in turn (one JSON document per line of a data file)."""
    bodies = body if isinstance(body, list) else [body]
    data = work / "bodies.jsonl"
    data.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    script = work / "post.lua"
    script.write_text(
        f"""local lines = {{}}
for line in io.lines("{data}") do
  lines[#lines + 1] = line
end
local requests = {{}}
local i = 0
-- built in init(), once wrk has set wrk.host: wrk.format() adds the Host header from it
init = function(args)
  for n, line in ipairs(lines) do
    requests[n] = wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, line)
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""
    )
    return script


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    result: dict[str, float] = {"errors": 0.0}
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found:
            result[f"p{pct}_ms"] = _ms(*found.groups())
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(rps.group(1)) if rps else 0.0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?timeout (\d+)"):
        found = re.search(pattern, out)
        if found:
            result["errors"] += float(found.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        result["errors"] += sum(float(g) for g in errors.groups()[:3])
    return result


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(
    name: str, url: str, bodies: dict[str, Any], seconds: int, work: Path, quick: bool = False
) -> dict[str, Any]:
    print(f"  {name}: warm-up", flush=True)
    wrk(url, bodies["mixed"], 1, 2, work)
    result: dict[str, Any] = {}
    for case in ("mixed",) if quick else ("mixed", "declined"):
        print(f"  {name}: {case} applicants, one request at a time", flush=True)
        result[f"serial_{case}"] = wrk(url, bodies[case], 1, seconds, work)
        print(f"  {name}: {case} applicants, 4 connections", flush=True)
        result[f"throughput_{case}"] = wrk(url, bodies[case], 4, seconds, work)
    print(f"  {name}: {BATCH_ROWS}-row batches, 2 connections", flush=True)
    batch = wrk(f"{url}/batch" if name != "mlflow" else url, bodies["batch"], 2, seconds, work)
    batch["rows_per_s"] = batch["rps"] * BATCH_ROWS
    result["batch"] = batch
    print(f"  {name}: {BATCH_ROWS}-row batches of approved applicants (no reason codes to compute)", flush=True)
    approved = wrk(f"{url}/batch" if name != "mlflow" else url, bodies["batch_approved"], 2, seconds, work)
    approved["rows_per_s"] = approved["rps"] * BATCH_ROWS
    result["batch_approved"] = approved
    if "batch_objects" in bodies:
        print(f"  {name}: {BATCH_ROWS}-row batches as a list of applicant objects", flush=True)
        objects = wrk(f"{url}/batch", bodies["batch_objects"], 2, seconds, work)
        objects["rows_per_s"] = objects["rps"] * BATCH_ROWS
        result["batch_objects"] = objects
    return result


def load_test(url: str, body: Any, pid: int, seconds: int, work: Path) -> dict[str, Any]:
    samples = [rss_mib(pid)]
    process = subprocess.Popen(
        ["wrk", "-t1", "-c4", f"-d{seconds}s", "--latency", "-s", str(lua(body, work)), url],
        stdout=subprocess.PIPE,
        text=True,
    )
    while process.poll() is None:
        time.sleep(1.0)
        samples.append(rss_mib(pid))
    result = parse_wrk(process.communicate()[0])
    result.update(
        rss_start_mib=samples[0],
        rss_after_10s_mib=samples[min(10, len(samples) - 1)],
        rss_end_mib=samples[-1],
        rss_max_mib=max(samples),
    )
    return result


# ---------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk measurement")
    parser.add_argument("--load-seconds", type=int, default=60, help="duration of the memory/error load test")
    parser.add_argument("--skip-mlflow", action="store_true", help="leave MLflow out (no .venv-mlflow needed)")
    parser.add_argument("--quick", action="store_true", help="only the test-split measurements (profiling)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    print("training the default model ...", flush=True)
    model_path, model, test = train_default_model(work)
    bodies = payloads(model, test)
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    results: dict[str, Any] = {}
    try:
        port = free_port()
        servers["scoring"] = (
            f"http://127.0.0.1:{port}/predict",
            start(
                [
                    sys.executable,
                    "-m",
                    "credit_scorer.serving",
                    "--model",
                    str(model_path),
                    "--release-id",
                    RELEASE_ID,
                    "--port",
                    str(port),
                    "--decision-log",
                    str(work / "decisions"),
                    "--reason-codes",
                    str(REPO / "conf" / "reason_codes.yaml"),
                ],
                env,
                work / "scoring.log",
            ),
        )
        wait_ready(f"http://127.0.0.1:{port}/health", servers["scoring"][1])
        port = free_port()
        servers["bare"] = (
            f"http://127.0.0.1:{port}/predict",
            start(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bare_booster_app:app",
                    "--app-dir",
                    str(HERE),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                {**env, "BARE_MODEL": str(model_path)},
                work / "bare.log",
            ),
        )
        wait_ready(f"http://127.0.0.1:{port}/docs", servers["bare"][1])
        if not args.skip_mlflow:
            mlflow = ensure_mlflow_venv()
            exported = work / "mlflow-model"
            subprocess.run(
                [str(MLFLOW_VENV / "bin" / "python"), str(HERE / "mlflow_export.py"), str(model_path), str(exported)],
                check=True,
            )
            port = free_port()
            servers["mlflow"] = (
                f"http://127.0.0.1:{port}/invocations",
                start(
                    [
                        str(mlflow),
                        "models",
                        "serve",
                        "-m",
                        str(exported),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-w",
                        "1",
                        "--env-manager",
                        "local",
                    ],
                    {
                        **{k: v for k, v in env.items() if k != "VIRTUAL_ENV"},
                        "PATH": f"{MLFLOW_VENV / 'bin'}:{env.get('PATH', '')}",
                    },  # it starts `uvicorn` from PATH
                    work / "mlflow.log",
                ),
            )
            wait_ready(f"http://127.0.0.1:{port}/ping", servers["mlflow"][1])
        for name, (url, _) in servers.items():
            print(f"measuring {name} ({url})", flush=True)
            results[name] = measure(name, url, bodies[name], args.seconds, work, args.quick)
        if args.quick:
            for name, r in results.items():
                print(name, {k: (round(v["p50_ms"], 2), round(v["p99_ms"], 2), round(v["rps"])) for k, v in r.items()})
            return
        scoring_url, scoring = servers["scoring"]
        print(f"load: {args.load_seconds} s on the scoring service, RSS sampled each second", flush=True)
        results["scoring"]["load"] = load_test(
            scoring_url, bodies["scoring"]["mixed"], scoring.pid, args.load_seconds, work
        )
    finally:
        for _, process in servers.values():
            stop(process)
        logged = sum(1 for f in (work / "decisions").glob("*.jsonl") for _ in f.open())
        shutil.rmtree(work, ignore_errors=True)
    results["scoring"]["decision_log_lines"] = logged

    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "seconds_per_measurement": args.seconds,
        "load_seconds": args.load_seconds,
        "results": results,
    }
    s = results["scoring"]
    b = results["bare"]
    ratios: dict[str, float] = {}
    for case in ("mixed", "declined"):
        ratios[f"scoring_vs_bare_{case}_throughput"] = s[f"throughput_{case}"]["rps"] / b[f"throughput_{case}"]["rps"]
        if "mlflow" in results:
            m = results["mlflow"][f"throughput_{case}"]["rps"]
            ratios[f"scoring_vs_mlflow_{case}_throughput"] = s[f"throughput_{case}"]["rps"] / m
    if "mlflow" in results:
        ratios["scoring_vs_mlflow_batch_rows"] = s["batch"]["rows_per_s"] / results["mlflow"]["batch"]["rows_per_s"]
    summary["ratios"] = ratios
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print_table(summary)


def print_table(summary: dict[str, Any]) -> None:
    results = summary["results"]
    print(f"\n{summary['machine']}; {summary['when']}; {summary['seconds_per_measurement']} s per measurement\n")
    print(
        "| server | applicants | one at a time: p50 / p99 (ms) | one at a time: req/s | 4 connections: req/s | "
        "1,000-row batches: rows/s |"
    )
    print("|---|---|---|---|---|---|")
    labels = (
        ("scoring", "credit-scorer (validation, reason codes, decision log)"),
        ("bare", "bare FastAPI route + booster"),
        ("mlflow", "mlflow models serve"),
    )
    for name, label in labels:
        if name not in results:
            continue
        r = results[name]
        for case, text in (("mixed", "test split (11 % declined)"), ("declined", "declined only")):
            serial = r[f"serial_{case}"]
            key = "batch" if case == "mixed" else "batch_approved"
            batch = f"{r[key]['rows_per_s']:,.0f}" + ("" if case == "mixed" else " (approved only)")
            print(
                f"| {label} | {text} | {serial['p50_ms']:.2f} / {serial['p99_ms']:.2f} | {serial['rps']:,.0f} | "
                f"{r[f'throughput_{case}']['rps']:,.0f} | {batch} |"
            )
    print()
    for key, value in summary["ratios"].items():
        print(f"- {key}: {value:.2f}")
    errors = {
        name: int(sum(v.get("errors", 0) for v in r.values() if isinstance(v, dict))) for name, r in results.items()
    }
    print(f"- errors (non-2xx, socket): {errors}")
    load = results["scoring"]["load"]
    print(
        f"- {summary['load_seconds']} s load: {load['rps']:,.0f} req/s, errors {int(load['errors'])}, RSS start "
        f"{load['rss_start_mib']:.0f} MiB, after 10 s {load['rss_after_10s_mib']:.0f}, end {load['rss_end_mib']:.0f}, "
        f"max {load['rss_max_mib']:.0f}"
    )
    print(f"- decision log lines written: {results['scoring']['decision_log_lines']:,}")


if __name__ == "__main__":
    main()
