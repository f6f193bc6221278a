"""Per-channel message templates: sandboxed Jinja2, checked at config load with file:line, rendered
per channel at delivery with a fallback to the rule's message."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from daemon.alerts import AlertEvent
from daemon.config import ConfigError, load_config
from daemon.notify.channel_templates import (
    MAX_OUTPUT,
    NAMES,
    check_message_template,
    check_messages,
    context,
    render,
    render_for,
)
from daemon.notify.console import ConsoleConfig, ConsoleNotifier
from tests.helpers import make_alert

ALERT = make_alert(labels={"symbol": "XMAG"}, values={"spread": 7.98, "series": "8.1 8.0 7.98"})


@pytest.mark.parametrize(
    "source",
    [
        "{{ symbol }} {{ value | num }} vs {{ threshold | num }}",
        "{% if state == 'resolved' %}ok{% else %}{{ compare }}{% endif %} {{ time }}",
        "{{ labels.symbol }} {{ values.spread | round(1) }} {{ '%+.1f' | format(value) }}",
        "{% for k, v in labels | dictsort %}{{ k }}={{ v }} {% endfor %}{{ range(3) | list }}",
    ],
)
def test_good_templates_pass_the_check(source: str) -> None:
    assert check_message_template(source) is None


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("{{ symbol }", "template line 1: unexpected '}'"),
        ("line one\n{% if value %}never closed", "template line 2:"),
        ("{{ symbl }}", "unknown variable symbl in template; available: compare, comparison,"),
        ("{{ value | nope }}", "No filter named 'nope'"),
        ("{{ ''.__class__ }}", "'__class__' is not allowed"),
        ("{{ cycler.__init__.__globals__ }}", "is not allowed (no `_` names)"),
        ("{{ labels['_secret'] }}", "'_secret' is not allowed"),
    ],
)
def test_bad_templates_are_refused_at_load(source: str, needle: str) -> None:
    problem = check_message_template(source)
    assert problem is not None and needle in problem


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ cycler.__init__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ ''|attr('__class__') }}",
        "{{ labels.update({'symbol': 'HACKED'}) }}",
        "{{ labels.pop('symbol') }}",
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 100000 }}",
        "{{ range(100000000) | list | length }}",
    ],
)
def test_sandbox_escapes_fail_harmlessly_at_render(source: str) -> None:
    """Even past the load check (say, a check bug), rendering refuses; delivery falls back."""
    with pytest.raises(SecurityError):
        render(source, ALERT)
    console = ConsoleNotifier("term", ConsoleConfig(type="console"))
    alert = make_alert(labels={"symbol": "XMAG"}, templates={"term": source})
    assert render_for(console, alert) == alert.summary
    assert alert.labels == {"symbol": "XMAG"}  # nothing was mutated


def test_output_is_capped() -> None:
    text = render("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", ALERT)
    assert len(text) == MAX_OUTPUT and text.endswith("…")


def test_context_offers_every_documented_name() -> None:
    ctx = context(ALERT)
    assert set(ctx) == NAMES
    assert ctx["symbol"] == "XMAG" and ctx["compare"] == "7.98 below 8.00"
    assert ctx["time"] == "2026-04-09 13:47 EDT"
    assert render("{{ symbol }} {{ values.series.split() | length }} pts", ALERT) == "XMAG 3 pts"
    resolved = make_alert(state="resolved", value=8.3)
    source = "{% if state == 'resolved' %}back: {{ compare }}{% else %}{{ summary }}{% endif %}"
    assert render(source, resolved) == "back: 8.30 at or above 8.00"


def test_render_failure_falls_back_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="daemon.notify.channel_templates")
    console = ConsoleNotifier("term", ConsoleConfig(type="console"))
    alert = make_alert(templates={"console": "{{ labels.sector }} {{ 1 / 0 }}"})
    assert render_for(console, alert) == alert.summary
    assert render_for(console, alert) == alert.summary
    [record] = caplog.records
    assert "rule rotation-spread-compresses: the message template for channel term failed" in (
        record.getMessage()
    )
    plain = make_alert()
    assert render_for(console, plain) is plain.summary  # no variant: the engine's summary


def test_check_messages_keys_must_name_a_channel_or_type() -> None:
    channels = {"desk": "slack", "phones": "sms"}
    assert check_messages({"desk": "{{ symbol }}", "sms": "{{ value }}"}, channels) == []
    [(key, reason)] = check_messages({"slak": "x"}, channels)
    assert key == "slak"
    assert reason == (
        "'slak' is neither a channel name nor a channel type in use; "
        "use one of: desk, phones, slack, sms"
    )
    [(key, reason)] = check_messages({"phones": "{{ nope }}"}, channels)
    assert key == "phones" and reason.startswith("unknown variable nope")


def test_alert_json_is_unchanged_without_templates_and_round_trips_with_them() -> None:
    plain = make_alert()
    assert "templates" not in json.loads(plain.to_json())
    assert AlertEvent.from_json(plain.to_json()) == plain
    with_t = make_alert(templates={"sms": "{{ symbol }}"})
    assert AlertEvent.from_json(with_t.to_json()) == with_t


# --- at config load: file:line, like `message` ------------------------------------------------

ALERTS = """\
channels:
  console: {type: console}
  desk: {type: slack, token: "", channel: "#desk"}
include: [rules/*.yaml]
"""
RULES = """\
rules:
  - name: nvda-high
    when:
      threshold: {symbols: NVDA, above: 100}
    message: "{symbol} {price:.2f}"
    messages:
      slack: "*{{ symbol }}* {{ value | num }} {{ compare }}"
      console: |
        {{ symbol }}
        {% if value > 100 %}high{% endif
    channels: [console, desk]
"""


def test_config_load_reports_template_errors_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "alerts.yaml", env={})
    [problem] = info.value.problems
    assert problem.file == "rules/r.yaml"
    assert problem.path == "rules[0].messages.console"
    assert problem.line == 8
    assert problem.message.startswith("template line 2: ")

    fixed = RULES.replace("{% endif\n", "{% endif %}\n")
    (tmp_path / "rules" / "r.yaml").write_text(fixed)
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    assert cfg.rules[0].rule.messages["slack"].startswith("*{{ symbol }}*")
