"""tickwatch: real-time market alerting daemon."""

__version__ = "0.1.0"
