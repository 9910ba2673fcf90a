"""The credit-scorer command line (Typer)."""
