"""Benchmark: `audit verify` over a compliance store of 10,000 ledgered records (goal ≤ 10 s).

Builds a store in a temporary folder through the real writers (``records.write_signoff``,
``records.write_approval``, ``workflow.store_model``, ``release_log.append_row``, all
ledgered and signed): 5,000 releases, each a tester sign-off and an approval record that
names a stored model file (20 distinct models of 1 MiB), plus 100 release-log rows. Then
times ``audit_verify`` in-process (median of --runs) and the CLI ``credit-scorer audit
verify`` as a user runs it (including Python start-up and imports). The signing key is
created in the temporary folder, never in the home directory.

    .venv/bin/python benchmarks/bench_audit.py [--releases 5000] [--runs 3]

Writes benchmarks/results/audit.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "audit.json"
MODELS = 20
MODEL_BYTES = 1 << 20
ROWS = 100


def build_store(root: Path, releases: int) -> None:
    """Sign-off + approval per release (every approval names a stored model); ROWS of them are logged."""
    sys.path.insert(0, str(REPO))
    from tests import audit_builders as build

    from credit_scorer.records import models as records
    from credit_scorer.records.release_log import ReleaseLogRow, append_row
    from credit_scorer.records.store import ComplianceStore
    from credit_scorer.release import workflow

    store = ComplianceStore(str(root))
    models = []
    for m in range(MODELS):
        blob = (f'{{"model": {m}, "trees": "' + "x" * MODEL_BYTES + '"}\n').encode()
        models.append(workflow.store_model(store, blob))
    logged = set(range(0, releases, max(1, releases // ROWS)))
    for n in range(releases):
        decided = build.BASE_TIME + timedelta(minutes=n)
        release_id, run_id = f"AI-REL-{n:08x}", f"{n:08x}-0000-4000-8000-000000000000"
        signoff = records.write_signoff(
            store, run_id, release_id, build.TESTER, "reviewed", "cli", decided - timedelta(seconds=30)
        )
        path, digest = models[n % MODELS]
        fields = build.approval_fields(
            release_id=release_id,
            run_id=run_id,
            timestamp=build.stamp(decided),
            model_sha256=digest,
            model_path=path,
            signed_at=signoff.timestamp,
            signoff_id=signoff.signoff_id,
        )
        record = records.write_approval(store, fields, decided)
        if n in logged:
            append_row(
                store,
                ReleaseLogRow(
                    date=build.stamp(decided + timedelta(seconds=20)),
                    event="release",
                    release_id=release_id,
                    model_path=path,
                    sha256=digest,
                    deployment_url=record.deployment_url or "",
                    approval_id=record.approval_id,
                    by=record.approver,
                ),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=5000, help="releases (each = 2 records)")
    parser.add_argument("--runs", type=int, default=3, help="timed audit_verify runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="credit-scorer-audit-bench-") as tmp:
        os.environ["CREDIT_SCORER_KEY"] = str(Path(tmp) / "key" / "ledger_ed25519.pem")
        root = Path(tmp) / "compliance"
        start = time.perf_counter()
        build_store(root, args.releases)
        setup = time.perf_counter() - start

        from credit_scorer.audit.verify import audit_verify
        from credit_scorer.records.store import ComplianceStore

        store = ComplianceStore(str(root))
        times, report = [], None
        for _ in range(args.runs):
            start = time.perf_counter()
            report = audit_verify(store)
            times.append(time.perf_counter() - start)
        assert report is not None
        if not report.ok:
            sys.exit(f"the benchmark store does not verify: {report.problems[:5]}")
        cli = str(Path(sys.executable).with_name("credit-scorer"))
        start = time.perf_counter()
        proc = subprocess.run([cli, "audit", "verify", "--store", str(root)], capture_output=True, text=True)
        cli_wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"credit-scorer audit verify failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        ledger_bytes = (root / "ledger" / "ledger.jsonl").stat().st_size

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "records": report.approvals * 2 + report.release_rows,
        "ledger_entries": report.entries,
        "entry_kinds": report.counts,
        "ledger_bytes": ledger_bytes,
        "setup_seconds": setup,
        "audit_verify_seconds_median": statistics.median(times),
        "audit_verify_seconds_all": times,
        "cli_audit_verify_wall_seconds": cli_wall,
        "goal_seconds": 10.0,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| `audit verify` over {report.entries:,} ledger entries "
        f"({report.approvals:,} approvals, {report.counts.get('signoff', 0):,} sign-offs, "
        f"{report.release_rows} release-log rows), median of {len(times)} | {statistics.median(times):.2f} s |"
    )
    print(f"| `credit-scorer audit verify` (CLI, wall, incl. start-up) | {cli_wall:.2f} s |")
    print(f"| building the store through the real writers | {setup:.1f} s |")


if __name__ == "__main__":
    main()
