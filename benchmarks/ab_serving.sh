#!/usr/bin/env bash
# Paired A/B of the scoring service: this checkout against another one (e.g. a `git worktree` of an
# older commit with its own `make .venv/.installed-stamp`), alternating, so that the machine's drifting
# speed hits both alike. Compare per-round ratios, not single numbers.
#   benchmarks/ab_serving.sh /tmp/base [rounds]
set -euo pipefail
other="$1"; rounds="${2:-7}"
here="$(cd "$(dirname "$0")/.." && pwd)"
for r in $(seq "$rounds"); do
  for d in "$other" "$here"; do
    echo "== $d round $r"
    (cd "$d" && .venv/bin/python benchmarks/bench_serving.py --quick --skip-mlflow --seconds 8 2>&1 | grep -E '^(scoring|bare) ')
  done
done
