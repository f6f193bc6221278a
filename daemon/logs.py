"""Logging set-up: one readable line per event on stderr, with secrets scrubbed.

Our code never logs a secret, but libraries may (a URL with a token in an exception message);
the filter replaces every configured secret value wherever it appears, as a last line of defence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["setup_logging"]


class _Scrub(logging.Filter):
    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        changed = False
        for s in self.secrets:
            if s in text:
                text = text.replace(s, "***")
                changed = True
            if record.exc_text and s in record.exc_text:
                record.exc_text = record.exc_text.replace(s, "***")
        if changed:
            record.msg, record.args = text, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(_Scrub(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "slack_sdk", "twilio", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
