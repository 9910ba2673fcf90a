"""Benchmark: Annex IV generation time with charts (render_html + charts + render_pdf).

Builds real inputs once (bundled data, the default model), then times each part over
several renders. Goal from the issue: ≤ 3 s in total.

    .venv/bin/python benchmarks/bench_annex_iv.py [--repeats 5]

Writes benchmarks/results/annex_iv.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from credit_scorer.documents import annex_iv
from credit_scorer.documents.build import RunArtefacts, build_inputs
from credit_scorer.documents.inputs import load_provider_facts
from credit_scorer.domain import checks, data, evaluate, fairness, risk, train
from credit_scorer.domain.config import load_dataset_spec, load_policy, training_config
from credit_scorer.records.people import load_people

RESULTS = Path(__file__).parent / "results" / "annex_iv.json"
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    spec, policy, config = load_dataset_spec(), load_policy(), training_config()
    frame, info = data.load_dataset(spec)
    clean, quality = data.validate_dataset(frame, spec)
    tr, va, te, sizes = data.split_dataset(clean, spec, config)
    model = train.train_model(tr, va, spec, config)
    ev = evaluate.evaluate_model(model, te, spec)
    fr = fairness.assess_fairness(model, te, spec, policy.fairness)
    ra = risk.assess_risk(risk.load_risk_register(), risk.risk_measurements(ev, fr, quality, model, policy.thresholds))
    ch = checks.threshold_checks(ev, fr, ra, policy.thresholds)
    run = RunArtefacts(
        spec=spec,
        training=config,
        dataset=info,
        data_quality=quality,
        split_sizes=sizes,
        model=model,
        test_split=te,
        evaluation=ev,
        fairness=fr,
        risk=ra,
        checks=ch,
    )
    inputs = build_inputs(
        release_id="AI-REL-bench000",
        run_id="bench",
        generated_at="2026-11-27T00:00:00Z",
        approval_status="benchmark",
        submitter="Ada Lovelace",
        people=load_people(REPO / "conf" / "people.yaml"),
        facts=load_provider_facts(REPO / "conf" / "annex_iv_facts.yaml"),
        run=run,
        release_history=[],
    )
    html_times: list[float] = []
    pdf_times: list[float] = []
    pdf = b""
    for _ in range(args.repeats):
        start = time.perf_counter()
        rendered = annex_iv.render_html(inputs)
        middle = time.perf_counter()
        pdf = annex_iv.render_pdf(rendered.html)
        end = time.perf_counter()
        html_times.append(middle - start)
        pdf_times.append(end - middle)
    total = [h + p for h, p in zip(html_times, pdf_times, strict=True)]
    summary = {
        "render_html_with_charts_seconds_median": statistics.median(html_times),
        "render_pdf_seconds_median": statistics.median(pdf_times),
        "total_seconds_median": statistics.median(total),
        "total_seconds_all": total,
        "pdf_bytes": len(pdf),
        "repeats": args.repeats,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"| Annex IV generation (median of {args.repeats}) | value |")
    print("|---|---|")
    print(f"| render_html incl. 7 charts | {summary['render_html_with_charts_seconds_median']:.2f} s |")
    print(f"| render_pdf (WeasyPrint) | {summary['render_pdf_seconds_median']:.2f} s |")
    print(f"| total (goal ≤ 3 s) | {summary['total_seconds_median']:.2f} s |")
    print(f"| PDF size | {len(pdf) / 1024:.0f} KiB |")


if __name__ == "__main__":
    main()
