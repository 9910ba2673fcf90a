"""The scoring service: one process per release, depending on the domain and core only."""
