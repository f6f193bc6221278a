"""Per-channel message templates: sandboxed Jinja2, checked when the config loads.

A rule's `message` (a checked `str.format` template) is rendered by the engine into
`AlertEvent.summary`, the same text for every channel. A rule's `messages:` adds variants keyed by
channel *name* or channel *type* (`{slack: "...", sms: "..."}`), written in Jinja2 so they can
branch (`{% if state == "resolved" %}`) and format (`{{ value | num }}`). They travel unrendered
on the event (`AlertEvent.templates`) and each channel renders its own at delivery through
`render_for`, which `Notifier.deliver` calls: the variant replaces the summary, the channel keeps
its frame (state, severity, value, time). A variant that fails at render time falls back to the
summary and is logged once, so an alert is never lost to a template.

Templates run in Jinja's `ImmutableSandboxedEnvironment` (no `_` attributes, no mutation); on top,
`range` is small, `*` and `**` cannot build huge values, and the output is capped. The load-time
check (`check_message_template`) also refuses unknown variables and any `_`-attribute outright.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from daemon.alerts import AlertEvent
from daemon.notify.wording import compare_text, format_number

if TYPE_CHECKING:
    from jinja2 import Template

    from daemon.notify.base import Notifier

__all__ = [
    "NAMES",
    "check_message_template",
    "check_messages",
    "context",
    "render",
    "render_for",
    "variant_for",
]

log = logging.getLogger(__name__)

#: Variables a template may use (see `context`).
NAMES: Final = frozenset(
    {
        "rule", "key", "id", "state", "severity", "labels", "values", "value", "threshold",
        "comparison", "compare", "summary", "time", "symbol", "repeat",
    }
)  # fmt: skip
MAX_OUTPUT: Final = 8000  # characters a template may produce
_MAX_RANGE: Final = 1000
_MAX_REPEAT: Final = 8000  # longest string/list `*` may build
_MAX_EXPONENT: Final = 100


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > _MAX_RANGE:
        raise SecurityError(f"range of {len(r)} items is too long (at most {_MAX_RANGE})")
    return r


def _num(x: Any) -> str:
    """`{{ value | num }}`: numbers as every channel writes them (`7.98`, `1,234.50`)."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return format_number(float(x))
    return "n/a" if x is None else str(x)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on the operators that can build huge values."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if (isinstance(right, int | float) and abs(right) > _MAX_EXPONENT) or (
                isinstance(left, int) and left.bit_length() > 256
            ):
                raise SecurityError("power too large for a message template")
            return left**right
        for seq, times in ((left, right), (right, left)):
            long = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if long and len(seq) * times > _MAX_REPEAT:
                raise SecurityError("`*` would build too long a value")
        return left * right


def _make_env() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.globals["range"] = _range
    env.filters["num"] = _num
    return env


_ENV: Final = _make_env()


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def check_message_template(source: str) -> str | None:
    """Why `source` can't be a message template, or None when it can (syntax, names, `_`)."""
    try:
        tree = _ENV.parse(source)
        _compiled(source)  # compiling also finds unknown filters and tests
    except TemplateSyntaxError as e:
        return f"template line {e.lineno or 1}: {e.message}"
    unknown = meta.find_undeclared_variables(tree) - NAMES - set(_ENV.globals)
    if unknown:
        return (
            f"unknown variable {', '.join(sorted(unknown))} in template; "
            f"available: {', '.join(sorted(NAMES))}"
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr: object = node.attr if isinstance(node, nodes.Getattr) else None
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        if isinstance(attr, str) and attr.startswith("_"):
            return f"template line {node.lineno}: {attr!r} is not allowed (no `_` names)"
    return None


def context(alert: AlertEvent) -> dict[str, Any]:
    """What a template sees: the alert's fields, plus `symbol`, `time` and `compare` ready-made."""
    return {
        "rule": alert.rule,
        "key": alert.key,
        "id": alert.id,
        "state": alert.state,
        "severity": alert.severity,
        "labels": dict(alert.labels),
        "values": dict(alert.values),
        "value": alert.value,
        "threshold": alert.threshold,
        "comparison": alert.comparison,
        "compare": compare_text(alert),
        "summary": alert.summary,
        "time": alert.time_ny.strftime("%Y-%m-%d %H:%M %Z"),
        "symbol": alert.labels.get("symbol", ""),
        "repeat": alert.repeat,
    }


def _capped(chunks: Iterator[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        out.append(chunk)
        size += len(chunk)
        if size > MAX_OUTPUT:
            return "".join(out)[: MAX_OUTPUT - 1] + "…"
    return "".join(out)


def render(source: str, alert: AlertEvent) -> str:
    """Render one template for `alert`; raises on a template error (see `render_for`)."""
    return _capped(_compiled(source).generate(context(alert))).strip()


def variant_for(alert: AlertEvent, name: str, kind: str) -> str | None:
    """The alert's template for a channel: by its name first, then by its type."""
    templates = alert.templates
    return templates.get(name, templates.get(kind)) if templates else None


_warned: set[tuple[str, str]] = set()


def render_for(notifier: Notifier, alert: AlertEvent) -> str:
    """The message text `notifier` should use for `alert`: its variant, else the summary."""
    source = variant_for(alert, notifier.name, notifier.kind)
    if source is None:
        return alert.summary
    try:
        return render(source, alert)
    except Exception as e:  # anything a template does wrong (1/0, a missing label) lands here
        reason = f"{type(e).__name__}: {e}"
        if (source, reason) not in _warned and len(_warned) < 256:
            _warned.add((source, reason))
            log.warning(
                "rule %s: the message template for channel %s failed (%s); sent the rule's "
                "message instead",
                alert.rule,
                notifier.name,
                reason,
            )
        return alert.summary


def check_messages(
    messages: Mapping[str, str], channels: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Problems with a rule's `messages:` as (key, reason); `channels` maps name → type.

    A key must name a configured channel or a channel type in use (a typo would otherwise be a
    variant nobody ever sees), and its template must pass `check_message_template`.
    """
    types = set(channels.values())
    out: list[tuple[str, str]] = []
    for key, source in messages.items():
        if key not in channels and key not in types:
            known = ", ".join(sorted({*channels, *types})) or "(none configured)"
            out.append((key, f"{key!r} is neither a channel name nor a channel type in use; "
                             f"use one of: {known}"))  # fmt: skip
            continue
        problem = check_message_template(source)
        if problem is not None:
            out.append((key, problem))
    return out
