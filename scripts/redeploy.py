#!/usr/bin/env python3
"""SOP §4 roll-back: ``scripts/redeploy.py --url <old_url> --reason TEXT --as NAME``.

Same as ``credit-scorer redeploy``: finds the release that was at that URL in
model_release_log.md, checks its stored model's sha256 and its approval record, serves
it again, appends a rollback row and labels the rolled-back ticket "ROLLED BACK".
"""

from __future__ import annotations

import sys

from credit_scorer.apps.cli.main import app

if __name__ == "__main__":
    sys.exit(app(["redeploy", *sys.argv[1:]]))
