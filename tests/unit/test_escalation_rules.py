"""`escalate:` in a rule file, and the pure step logic (`daemon.notify.escalation`)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.notify.escalation import Chain, next_step
from daemon.notify.silences import Silence
from daemon.rules import Escalate
from tests.helpers import make_alert

ALERTS = """\
channels:
  slack_desk: {type: console}
  sms_oncall: {type: console}
rules:
  - name: spread-break
    when: {threshold: {symbols: NVDA, below: 100}}
    severity: critical
    channels: [slack_desk]
    escalate: %s
"""


def load(tmp_path: Path, escalate: str):
    (tmp_path / "alerts.yaml").write_text(textwrap.dedent(ALERTS % escalate))
    return load_config(tmp_path / "alerts.yaml")


def test_a_rule_escalates_to_channels_after_a_delay(tmp_path: Path) -> None:
    cfg = load(tmp_path, "{after: 10m, to: [sms_oncall], repeat: 3}")
    policy = cfg.delivery.escalations["spread-break"]
    assert (policy.after, policy.to, policy.repeat) == (dt.timedelta(minutes=10), ["sms_oncall"], 3)


@pytest.mark.parametrize(
    ("escalate", "said"),
    [
        ("{after: 10m, to: [sms_oncal]}", "escalate.to[0]: unknown channel 'sms_oncal' (did you "
         "mean 'sms_oncall'?)"),
        ("{after: 0s, to: [sms_oncall]}", "escalate.after: escalate.after must be at least 1s"),
        ("{after: 10m, to: []}", "escalate.to"),
        ("{after: 10m, to: [sms_oncall], repeat: 0}", "escalate.repeat"),
        ("{after: 10m, to: [sms_oncall], every: 5m}", "unknown field 'every'"),
    ],
)  # fmt: skip
def test_a_bad_escalation_is_refused_with_where_and_why(
    tmp_path: Path, escalate: str, said: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, escalate)
    assert said in str(err.value)
    assert "alerts.yaml:9: rules[0].escalate" in str(err.value)  # the line of `escalate:`


POLICY = Escalate(after=dt.timedelta(minutes=5), to=["sms", "pager"], repeat=2)


def silence(ends_ms: int, *matchers: str) -> Silence:
    return Silence("s1", matchers, "ann", "earnings", 0, ends_ms, 0)


def test_steps_send_to_every_target_then_end_after_repeat() -> None:
    chain = Chain(make_alert(), started_ms=1_000)
    one = next_step(chain, POLICY, 301_000, acked_ms=None, silences=[])
    assert (one.action, one.next_due_ms) == ("send", 601_000)
    assert [n.channel for n in one.messages] == ["sms", "pager"]
    assert one.chain is not None
    two = next_step(one.chain, POLICY, 601_000, acked_ms=None, silences=[])
    assert (two.action, two.next_due_ms, two.why) == ("send", None, "step 2 of 2")


def test_an_ack_since_the_firing_ends_it_an_older_one_does_not() -> None:
    chain = Chain(make_alert(), started_ms=10_000)
    assert next_step(chain, POLICY, 400_000, acked_ms=10_000, silences=[]).action == "end"
    assert next_step(chain, POLICY, 400_000, acked_ms=9_999, silences=[]).action == "send"
    assert next_step(chain, None, 400_000, acked_ms=None, silences=[]).why == (
        "its rule no longer escalates"
    )


def test_a_matching_silence_defers_to_its_end_another_does_not() -> None:
    chain = Chain(make_alert(), started_ms=0)
    held = next_step(chain, POLICY, 300_000, acked_ms=None,
                     silences=[silence(900_000, "rule=rotation-spread-compresses")])  # fmt: skip
    assert (held.action, held.next_due_ms) == ("defer", 900_000)
    other = next_step(chain, POLICY, 300_000, acked_ms=None,
                      silences=[silence(900_000, "rule=another")])  # fmt: skip
    assert other.action == "send"


def test_a_route_may_escalate_and_its_channels_are_checked(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(textwrap.dedent(ALERTS % "null") + textwrap.dedent("""\
        route:
          routes:
            - match: {severity: critical}
              escalate: {after: 10m, to: [sms_oncall, pagr]}
        """))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "alerts.yaml")
    assert "route.routes[0].escalate.to[1]: unknown channel 'pagr'" in str(err.value)
