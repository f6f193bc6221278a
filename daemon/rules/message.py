"""Alert message templates: `str.format` placeholders, checked at load, never evaluated.

Only bare names are allowed (`{value:.2f}`), not attribute or index access (`{x.__class__}`),
so a template cannot reach into Python objects. Every name must be one the rule's condition
provides; the check runs at load time so a typo is a file:line error, not a blank alert.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

__all__ = [
    "DEFAULT_MESSAGES",
    "DEFAULT_RESOLVED",
    "PLACEHOLDERS",
    "SERIES_CROSS_MESSAGE",
    "check_template",
    "render",
]

_COMMON = {
    "rule": "",
    "severity": "",
    "state": "",
    "time": "",
    "value": 0.0,
    "threshold": 0.0,
    "comparison": "",
    "clear_text": "",
}
PLACEHOLDERS: dict[str, dict[str, object]] = {
    "threshold": {**_COMMON, "symbol": "", "price": 0.0},
    "spread": {
        **_COMMON,
        "a": "",
        "b": "",
        "a_value": 0.0,
        "b_value": 0.0,
        "a_price": 0.0,
        "b_price": 0.0,
        "mode": "",
        "since": "",
    },
    "pct_move": {**_COMMON, "symbol": "", "price": 0.0, "from_price": 0.0, "window": ""},
    "crosses": {
        **_COMMON,
        "symbol": "",
        "price": 0.0,
        "from_price": 0.0,
        "from_value": 0.0,
        "a": "",
        "b": "",
        "a_price": 0.0,
        "b_price": 0.0,
        "mode": "",
    },
    "band": {**_COMMON, "symbol": "", "price": 0.0, "lower": 0.0, "upper": 0.0},
    "stale": {**_COMMON, "symbol": "", "silent_for": ""},
    "breadth": {**_COMMON, "count": 0.0, "of": 0.0, "symbols": ""},
    "volume_spike": {**_COMMON, "symbol": "", "volume": 0.0, "usual": 0.0},
    "earnings": {**_COMMON, "symbol": "", "report_date": "", "when_text": "", "hours": 0.0},
    "earnings_reminder": {
        **_COMMON,
        "symbol": "",
        "report_date": "",
        "when_text": "",
        "report_time": "",
        "lead": "",
        "note": "",
    },
    "expr": {**_COMMON, "value2": 0.0, "threshold2": 0.0, "value3": 0.0, "threshold3": 0.0},
    "headline": {
        **_COMMON,
        "symbol": "",
        "symbols": "",
        "title": "",
        "source": "",
        "url": "",
        "sentiment": 0.0,
    },
}
DEFAULT_MESSAGES = {
    "threshold": "{symbol} {price:.2f} is {comparison} {threshold:g}",
    "spread": "{a}-{b} {mode} spread {value:.2f} is {comparison} {threshold:g}",
    "pct_move": "{symbol} moved {value:+.2f}% in {window} to {price:.2f}",
    "headline": "{symbol}: {title} ({source})",
    "crosses": "{symbol} {comparison} {threshold:g} at {price:.2f}",
    "stale": "{symbol}: no data for {silent_for} during the session",
    "breadth": "{count:.0f} of {of:.0f} meet {rule}: {symbols}",
    "volume_spike": "{symbol} volume {value:.1f}x the usual for this time of day",
    "earnings": "{symbol} is in its earnings window ({report_date} {when_text})",
    "earnings_reminder": "{symbol} reports {when_text} {report_time} ({lead})",
    "band": "{symbol} {comparison} the {lower:g}-{upper:g} channel at {price:.2f}",
    "expr": "{rule}: {value:.2f} {comparison} {threshold:g}",
    "all": "{rule}: {value:.2f}",
    "any": "{rule}: {value:.2f}",
    "not": "{rule}: {value:.2f}",
}
DEFAULT_RESOLVED = "{rule} resolved: value {value:.2f} is {clear_text}"
#: A crossing of a spread, a ratio or an expression has no symbol or price of its own.
SERIES_CROSS_MESSAGE = "{rule}: {value:.4g} {comparison} {threshold:g}"


def placeholders(kinds: list[str]) -> dict[str, object]:
    """Names a template may use for a condition made of these kinds (combined: their union)."""
    out: dict[str, object] = dict(_COMMON)
    for kind in kinds:
        out.update(PLACEHOLDERS.get(kind, {}))
    return out


def check_template(template: str, kind: str | list[str]) -> str | None:
    """Why `template` can't render for a rule of these condition kinds, or None when fine."""
    allowed = placeholders([kind] if isinstance(kind, str) else kind)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        return f"bad template: {e} (write a literal brace as {{{{ or }}}})"
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name == "" or not name.isidentifier():
            return (
                f"placeholder {{{name}}} is not allowed: use plain names such as {{value}} "
                "(no positions, attributes or indexes)"
            )
        if name not in allowed:
            return f"unknown placeholder {{{name}}}; available: {', '.join(sorted(allowed))}"
        if conversion:
            return f"conversion !{conversion} is not allowed in {{{name}}}"
        if spec and "{" in spec:
            return f"nested placeholder in the format of {{{name}}} is not allowed"
        try:
            format(allowed[name], spec or "")
        except (ValueError, TypeError) as e:
            return f"{{{name}:{spec}}}: {e}"
    return None


class _Missing(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "?"


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill a checked template; a value of the wrong type renders as text, never raises."""
    try:
        return string.Formatter().vformat(template, (), _Missing(values))
    except (ValueError, TypeError):
        safe = {k: (v if isinstance(v, str) else str(v)) for k, v in values.items()}
        plain = "".join(
            lit + (f"{{{name}}}" if name else "")
            for lit, name, _, _ in string.Formatter().parse(template)
        )
        return string.Formatter().vformat(plain, (), _Missing(safe))
