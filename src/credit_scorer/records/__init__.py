"""What an auditor relies on: the store and its backends, the ledger, records, release log, people, thresholds."""
