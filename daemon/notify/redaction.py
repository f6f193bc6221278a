"""Channel secrets: finding the `SecretStr` fields of a config, and masking secrets in text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

from pydantic import SecretStr

__all__ = ["holds_secret", "redact", "secret_values"]

#: Secrets shorter than this are not searched for in text (they would match everywhere).
_MIN_SECRET = 4


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret (longest first, so a token inside a URL goes whole) as `***`."""
    for s in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def holds_secret(annotation: Any) -> bool:
    """`SecretStr`, or a container/optional of it (`list[SecretStr]`, `SecretStr | None`)."""
    if annotation is SecretStr:
        return True
    return any(holds_secret(arg) for arg in get_args(annotation))


def secret_values(value: Any) -> Iterator[tuple[str, SecretStr]]:
    """(`[i]`-style suffix, secret) for a SecretStr or the SecretStrs inside a list or dict."""
    if isinstance(value, SecretStr):
        yield "", value
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            for sub, s in secret_values(v):
                yield f"[{i}]{sub}", s
    elif isinstance(value, dict):
        for k, v in value.items():
            for sub, s in secret_values(v):
                yield f".{k}{sub}", s
