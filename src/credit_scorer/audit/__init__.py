"""The quarterly audit (SOP §5): ledger verification, approval spot-checks, threshold history."""
