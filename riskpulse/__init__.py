"""riskpulse: streaming financial-news sentiment monitor (CLI and settings)."""

__version__ = "0.1.0"
