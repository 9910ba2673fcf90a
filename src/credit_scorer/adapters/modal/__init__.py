"""Modal: the generated app file, the deployer, the container side and its settings."""
