"""Console channel: one readable line per alert transition on stdout.

For `make run` on a laptop, for `tickwatch test`, and as the channel that always works when no
secrets are set. One line per alert (newlines in summaries are folded) so the output greps and
tails cleanly; flushed after each line so it shows up promptly when piped or in `docker logs`.
"""

from __future__ import annotations

import sys
from typing import ClassVar, Literal, TextIO

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.notification import Notification, Receipt
from daemon.notify.wording import compare_text, format_number, order_alerts

__all__ = ["ConsoleConfig", "ConsoleNotifier", "console_line"]


class ConsoleConfig(ChannelConfig):
    """`channels.<name>` with `type: console` in alerts.yaml (no options)."""

    type: Literal["console"]


def _plain(x: float) -> str:
    """`7.98`, `8`: two decimals, but a whole threshold stays as the rule wrote it."""
    return f"{x:g}" if float(x).is_integer() else format_number(x)


def _value_name(alert: AlertEvent) -> str:
    """Name the value after the entry of `values` it came from (e.g. `spread`), else `value`."""
    if alert.value is not None:
        for name, v in alert.values.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and v == alert.value:
                return name
    return "value"


def console_line(alert: AlertEvent) -> str:
    """`2026-04-09 13:47 ET  FIRING  warning  rule  spread=7.98 below 8  v3f2a9c1e  | summary`.

    The `v…` is the rule's version (`AlertEvent.rule_version`), shown when the event has one.
    """
    parts = [
        f"{alert.time_ny:%Y-%m-%d %H:%M} ET",
        "RESOLVED" if alert.state == "resolved" else "FIRING",
        alert.severity,
        alert.key,
    ]
    cmp = compare_text(alert, fmt=_plain)
    if cmp:
        parts.append(f"{_value_name(alert)}={cmp}")
    if alert.rule_version:
        parts.append(f"v{alert.rule_version}")
    line = "  ".join(parts)
    summary = " ".join(alert.summary.split())
    return f"{line}  | {summary}" if summary else line


class ConsoleNotifier(Notifier):
    """Writes `console_line(alert)` to a text stream (stdout unless one is injected)."""

    kind: ClassVar[str] = "console"
    config_model: ClassVar[type[ChannelConfig]] = ConsoleConfig
    config: ConsoleConfig

    def __init__(self, name: str, config: ConsoleConfig, *, stream: TextIO | None = None):
        if not isinstance(config, ConsoleConfig):
            raise TypeError(f"ConsoleNotifier needs a ConsoleConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._stream = stream

    def lines(self, n: Notification) -> list[str]:
        """One line per alert (a group or digest lists each, most pressing first)."""
        if n.kind == "notice" or not n.alerts:
            return [n.text]
        return [self.truncate(console_line(a)) for a in order_alerts(n.alerts)]

    def preview(self, n: Notification) -> str:
        return "\n".join(self.lines(self.prepare(n)))

    async def send(self, n: Notification) -> Receipt | None:
        # Resolve stdout at send time, not at construction, so redirection (and capsys) applies.
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write("".join(line + "\n" for line in self.lines(n)))
        stream.flush()
        return None
