"""credit-scorer: credit-scoring models that reach production only through a release gate."""

__version__ = "0.1.0"
