"""`tickwatch notify CHANNEL TEXT` and `tickwatch render RULE`, run in-process as a user runs
them, against tmp configs (and the fake Slack for a real send)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import load_config
from daemon.notify.preview import render_rule, send_test_notice
from tests.fakes.slack_server import FakeSlackServer

TOKEN = "xoxb-1111-2222-fakeslacktoken"

ALERTS = """\
channels:
  console: {type: console}
  desk:
    type: slack
    token: ${SLACK_BOT_TOKEN:-}
    channel: "#desk"
    base_url: ${SLACK_API_URL:-http://127.0.0.1:9/api/}
  phones:
    type: sms
    account_sid: AC00000000000000000000000000000000
    auth_token: ${TWILIO_AUTH_TOKEN:-}
    from: "+15550100000"
    to: ["+15550100001"]
include: [rules/*.yaml]
"""
RULES = """\
rules:
  - name: nvda-high
    when:
      threshold: {symbols: NVDA, above: 100}
    message: "{symbol} at {price:.2f}, above {threshold:g}"
    messages:
      sms: >-
        {{ symbol }} {{ value | num }} > {{ threshold | num }} —
        {% if state == 'resolved' %}calm{% else %}act{% endif %}
      console: "{{ symbol }}: {{ 1 / 0 }}"
    channels: [console, desk, phones]
"""


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for var in ("SLACK_BOT_TOKEN", "SLACK_API_URL", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    # `notify` sets up logging (root handler, levels of noisy libraries): put it all back.
    root = logging.getLogger()
    handlers = list(root.handlers)
    loggers = [root] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    levels = {lg: lg.level for lg in loggers}
    yield tmp_path
    root.handlers[:] = handlers
    for lg in loggers:
        lg.setLevel(levels[lg])
    for lg in logging.root.manager.loggerDict.values():
        if isinstance(lg, logging.Logger) and lg not in levels:
            lg.setLevel(logging.NOTSET)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_notify_console(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notify", "console", "hello from tickwatch"]) == 0
    out = capsys.readouterr().out
    assert out == "hello from tickwatch\nsent to console\n"


def test_notify_an_unconfigured_channel_says_so(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notify", "dsk", "x"]) == 2
    assert "unknown channel 'dsk' (did you mean 'desk'?)" in capsys.readouterr().err


def test_notify_a_channel_that_is_off_exits_1_with_the_reason(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["notify", "desk", "x"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "tickwatch notify: channel 'desk' (slack) is off: token is empty (export SLACK_BOT_TOKEN)\n"
    )


def test_notify_failure_exits_1_with_the_channels_error_and_no_secret(
    config_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{closed_port()}/api/")
    assert main(["notify", "desk", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tickwatch notify: Slack channel 'desk': could not reach Slack (")
    assert TOKEN not in err


async def test_send_test_notice_posts_through_slack(
    config_dir: Path, slack_server: FakeSlackServer
) -> None:
    env = {"SLACK_BOT_TOKEN": slack_server.token, "SLACK_API_URL": slack_server.base_url}
    cfg = load_config(config_dir / "alerts.yaml", env=env)
    assert await send_test_notice(cfg, "desk", "is this thing on?") is None
    [(_, message)] = slack_server.top_level()
    assert message["text"] == "is this thing on?"
    slack_server.fail_with("not_in_channel")
    error = await send_test_notice(cfg, "desk", "again")
    assert error is not None and error.startswith("Slack says not_in_channel: invite the bot")


def test_render_shows_each_channel_with_its_template(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "nvda-high"]) == 1  # the console variant fails to render
    out = capsys.readouterr().out
    assert out.startswith("nvda-high firing (made-up values), summary: NVDA at 101.00, above 100")
    console, desk, phones = out.split("\n--- ")[1:]
    assert console.startswith("console (console), from messages.console ---\n")
    assert "template error, the rule's message is sent instead: ZeroDivisionError" in console
    assert "FIRING  warning  nvda-high{symbol=NVDA}" in console
    assert desk.startswith("desk (slack), from message ---\nFIRING warning nvda-high")
    assert "*Value*: 101.00 above 100.00" in desk
    assert phones.startswith("phones (sms), from messages.sms ---\n")
    assert "FIRING warning nvda-high: NVDA 101.00 > 100.00 - act 101.00 > 100.00" in phones
    assert "GSM-7, 1 segment(s) of at most 1; to 1 number(s))" in phones


def test_render_resolved_and_unknown_rule(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = load_config(config_dir / "alerts.yaml", env={})
    alert, previews = render_rule(cfg, "nvda-high", "resolved")
    assert alert.state == "resolved" and alert.value is not None and alert.value < 100
    sms = next(p for p in previews if p.kind == "sms")
    assert "RESOLVED warning nvda-high: NVDA 99.00 > 100.00 - calm" in sms.text
    assert main(["render", "nvda-hi"]) == 2
    assert "unknown rule 'nvda-hi' (did you mean 'nvda-high'?)" in capsys.readouterr().err


def test_render_follows_the_route_tree(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A route that sends warnings to the desk only: the preview shows the desk, and says so."""
    alerts = config_dir / "alerts.yaml"
    alerts.write_text(alerts.read_text() + "route:\n  routes:\n"
                      "    - {match: {severity: warning}, channels: [desk]}\n")  # fmt: skip
    assert main(["render", "nvda-high"]) == 0  # the failing console variant is not reached
    out = capsys.readouterr().out
    assert "the route tree sends it to: desk (the rule lists: console, desk, phones)" in out
    assert [p.split(" ", 1)[0] for p in out.split("\n--- ")[1:]] == ["desk"]
