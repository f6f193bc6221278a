"""Console channel: one readable, flushed line per alert transition."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from daemon.alerts import AlertEvent
from daemon.events import dt_to_ms
from daemon.notify.console import ConsoleConfig, ConsoleNotifier, console_line
from daemon.notify.notification import Notification
from tests.helpers import make_alert as base_alert


def one(alert: AlertEvent) -> Notification:
    """One alert transition as the notification a channel is asked to send."""
    return Notification.single(alert, "test")


# 2026-04-09 13:47 in New York (EDT, UTC-4).
TS_MS = dt_to_ms(datetime(2026, 4, 9, 17, 47, tzinfo=UTC))


def make_alert(**overrides: Any) -> AlertEvent:
    return base_alert(**{**{"values": {"spread": 7.98, "xmag_ytd": 10.7}}, **overrides})


class FlushCounter(io.StringIO):
    """A stream that counts flushes, to prove each line is pushed out immediately."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def notifier(stream: io.StringIO | None = None) -> ConsoleNotifier:
    return ConsoleNotifier("term", ConsoleConfig(type="console"), stream=stream)


def test_firing_line_reads_like_the_spec() -> None:
    assert console_line(make_alert()) == (
        "2026-04-09 13:47 ET  FIRING  warning  rotation-spread-compresses  spread=7.98 below 8"
        "  | XMAG-MAGS YTD spread compressed to 7.98 points"
    )


def test_resolved_line_states_the_true_relation() -> None:
    line = console_line(make_alert(state="resolved", value=8.12, values={"spread": 8.12}))
    assert line.startswith("2026-04-09 13:47 ET  RESOLVED  warning  rotation-spread-compresses  ")
    # The event still carries the firing comparison ("below"); 8.12 is not below 8.
    assert "spread=8.12 at or above 8  |" in line


def test_labelled_alert_shows_its_key_and_unnamed_value() -> None:
    alert = make_alert(
        rule="big-move",
        key="big-move{symbol=NVDA}",
        labels={"symbol": "NVDA"},
        value=-5.2,
        threshold=-5.0,
        comparison="<",
        values={},
        summary="NVDA down 5.2% in 15 min",
    )
    assert "  big-move{symbol=NVDA}  value=-5.20 below -5  | NVDA down" in console_line(alert)


def test_alert_without_value_has_no_value_part() -> None:
    line = console_line(make_alert(value=None, threshold=None, summary="AAPL raises AI capex"))
    assert line.endswith("  FIRING  warning  rotation-spread-compresses  | AAPL raises AI capex")
    assert "=" not in line


async def test_send_writes_one_flushed_line_per_alert() -> None:
    stream = FlushCounter()
    console = notifier(stream)
    await console.send(one(make_alert(summary="line one\nline two\n\n  indented")))
    await console.send(one(make_alert(state="resolved", seq=2, value=8.2)))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("| line one line two indented")
    assert " RESOLVED " in lines[1]
    assert stream.flushes == 2


async def test_default_stream_is_stdout_at_send_time(capsys: pytest.CaptureFixture[str]) -> None:
    console = notifier()  # created before capture swaps sys.stdout: must still reach it
    await console.send(one(make_alert(severity="critical")))
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "  FIRING  critical  rotation-spread-compresses  " in out


def test_console_refuses_another_channels_config() -> None:
    from daemon.notify.base import ChannelConfig

    with pytest.raises(TypeError, match="ConsoleConfig"):
        ConsoleNotifier("term", ChannelConfig(type="console"))  # type: ignore[arg-type]


async def test_group_prints_a_line_per_alert_most_pressing_first() -> None:
    stream = io.StringIO()
    alerts = (
        make_alert(severity="info", key="a"),
        make_alert(state="resolved", severity="critical", key="b", value=8.2),
        make_alert(severity="critical", key="c"),
    )
    await notifier(stream).deliver(Notification(channel="t", key="g", alerts=alerts, kind="group"))
    states = [line.split("  ")[1:3] for line in stream.getvalue().splitlines()]
    assert states == [["FIRING", "critical"], ["FIRING", "info"], ["RESOLVED", "critical"]]
