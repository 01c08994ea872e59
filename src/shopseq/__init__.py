"""shopseq: e-commerce behaviour logs to analyses, predictions and plans."""

__version__ = "0.1.0"
