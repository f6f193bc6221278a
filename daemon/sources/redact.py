"""Secrets kept out of text for both source bases: secret values, key-bearing queries, the ws log.

Both bases scrub through `cut_secrets`; each keeps its own rule of which values and in what
order (a feed skips values shorter than 4 characters, REST replaces the longest first), and the
REST side also cuts `apikey=`-style query values and Alpha Vantage's quoted key (`cut_keys`),
because aiohttp writes the full URL into its exception text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["RedactingLogger", "cut_keys", "cut_secrets"]

_QUERY_SECRET = re.compile(r"(?i)\b(apikey|api_key|token|secret|password)=([^&\s'\"<>]+)")
#: Alpha Vantage's Information text quotes the key: "We have detected your API key as XYZ and ..."
_KEY_AS = re.compile(r"(?i)(api ?key as\s+)([A-Za-z0-9_\-]{4,})")
_OUTGOING_FRAME = re.compile(r"^> (TEXT|BINARY) .*(\[\d+ bytes\])$", re.DOTALL)


def cut_secrets(text: str, secrets: Iterable[str], min_len: int = 1) -> str:
    """`text` with each of `secrets` (in the order given, if at least `min_len` long) as ***."""
    for value in secrets:
        if len(value) >= min_len and value in text:
            text = text.replace(value, "***")
    return text


def cut_keys(text: str) -> str:
    """`text` with `apikey=`/`token=`-style query values and an "API key as X" quote as ***."""
    text = _QUERY_SECRET.sub(r"\1=***", text)
    return _KEY_AS.sub(r"\1***", text)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger with secrets cut out.

    At DEBUG it logs request lines (a query-string token) and a truncated copy of each frame we
    send: an auth message cut in the middle shows part of a secret that no search finds, so the
    content of outgoing frames is not logged at all (our own log says what we subscribed).
    """

    def __init__(self, logger: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(logger, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        text = _OUTGOING_FRAME.sub(r"> \1 (content not logged) \2", text)
        exc = kwargs.pop("exc_info", None)
        if exc:
            text += f" ({exc if isinstance(exc, BaseException) else 'see above'})"
        kwargs.pop("stack_info", None)
        self.logger.log(level, "%s", self._redact(text), **kwargs)
