"""The operator commands against a real Redis: silence, deadletter, routes test, status."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis as redis_sync

from daemon.alerts import AlertEvent
from daemon.cli import main
from daemon.notify.notification import Notification
from daemon.store.keys import Keys


@pytest.fixture
def cfg_path(tmp_path: Path, redis_url: str, keys: Keys) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "rules:\n  - name: nvda-high\n    when: {threshold: {symbols: NVDA, above: 100}}\n"
        "    severity: warning\n    channels: [desk]\n"
    )
    (tmp_path / "alerts.yaml").write_text(f"""\
redis: {{url: "{redis_url}", prefix: {keys.prefix}}}
channels:
  desk: {{type: console}}
  phone: {{type: console, quiet_hours: {{start: "00:00", end: "23:59"}}}}
include: [rules/*.yaml]
route:
  routes:
    - match: {{severity: critical}}
      channels: [phone, desk]
""")
    return tmp_path / "alerts.yaml"


@pytest.fixture
def r(redis_url: str) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_url, decode_responses=True)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_silence_add_list_expire(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(cfg_path)
    rc, out, _ = run(capsys, "silence", "--config", c, "add", "symbol=NVDA", "rule=~nvda-.*",
                     "--for", "2h", "--author", "ann", "--reason", "earnings")  # fmt: skip
    assert rc == 0 and out.startswith("silence ")
    sid = out.split()[1]
    rc, out, _ = run(capsys, "silence", "--config", c, "list")
    assert rc == 0 and sid in out and "active" in out and "by ann: earnings" in out
    # routes test sees the silence
    rc, out, _ = run(capsys, "routes", "--config", c, "test", "rule=nvda-high", "symbol=NVDA")
    assert rc == 0 and "SILENCED" in out and f"silence {sid} by ann" in out
    rc, out, _ = run(capsys, "silence", "--config", c, "expire", sid)
    assert rc == 0 and "expired" in out
    rc, out, _ = run(capsys, "silence", "--config", c, "list")
    assert sid not in out
    rc, out, _ = run(capsys, "silence", "--config", c, "list", "--all")
    assert sid in out and "expired" in out
    rc, _, err = run(capsys, "silence", "--config", c, "expire", "nope")
    assert rc == 1 and "no silence 'nope'" in err


def test_silence_refuses_bad_matchers(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "silence", "--config", str(cfg_path), "add", "NVDA", "--for", "1h",
                     "--author", "ann", "--reason", "x")  # fmt: skip
    assert rc == 2 and "is not a matcher" in err


def test_routes_test_explains(cfg_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "routes", "--config", str(cfg_path), "test", "rule=nvda-high",
                     "severity=critical", "symbol=NVDA")  # fmt: skip
    assert rc == 0
    assert "route root.0 [severity=critical] -> phone, desk" in out
    assert "phone" in out and "desk" in out and "SEND" in out
    # critical breaks quiet hours; a warning would not
    rc, out, _ = run(capsys, "routes", "--config", str(cfg_path), "test", "rule=nvda-high")
    assert "desk" in out and "SEND" in out and "phone" not in out


def test_deadletter_list_and_retry(
    cfg_path: Path, keys: Keys, r: redis_sync.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    a = AlertEvent(rule="nvda-high", key="nvda-high{symbol=NVDA}", state="firing", seq=3,
                   ts_ms=int(time.time() * 1000), severity="warning", summary="NVDA 101",
                   channels=("desk",))  # fmt: skip
    n = Notification.single(a, "desk")
    dead_id = r.xadd(keys.deadletter, {"n": n.to_json(), "channel": "desk", "reason": "HTTP 500",
                                       "entry": "1-0", "attempts": "4"})  # fmt: skip
    r.set(keys.delivered(n.key, "desk"), "sending")
    r.xadd(keys.deadletter, {"alert": "{broken", "channel": "-", "reason": "malformed"})
    rc, out, _ = run(capsys, "deadletter", "--config", str(cfg_path), "list")
    assert rc == 0 and dead_id in out and n.key in out and "HTTP 500" in out
    rc, out, _ = run(capsys, "deadletter", "--config", str(cfg_path), "retry", "--all")
    assert rc == 1  # the malformed one cannot be retried, and says so
    assert f"{dead_id}: queued again for desk" in out and "cannot retry" in out
    queued = r.xrange(keys.deliver("desk"))
    assert [json.loads(f["n"])["key"] for _, f in queued] == [n.key]
    assert r.get(keys.delivered(n.key, "desk")) is None  # a fresh attempt
    assert len(r.xrange(keys.deadletter)) == 1


def test_status(
    cfg_path: Path, keys: Keys, r: redis_sync.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = run(capsys, "status", "--config", str(cfg_path))
    assert rc == 1 and "NOT RUNNING" in out
    r.set(keys.heartbeat, "ticks=5 headlines=0 alerts=1 sent=1 dead=0 uptime=3s", px=10_000)
    r.hset(keys.sources_status, "alpaca", json.dumps({
        "type": "alpaca", "state": "connected", "last_message_age_s": 0.4,
        "messages_per_s": 812.5, "accepted": 9000, "rejected": 3, "reconnects": 1,
    }))  # fmt: skip
    r.hset(keys.suppressed, "quiet:phone", 2)
    rc, out, _ = run(capsys, "status", "--config", str(cfg_path))
    assert rc == 0 and "alive, ticks=5" in out
    assert "alpaca" in out and "connected" in out and "812.5 msg/s" in out
    assert "phone" in out and "held back: quiet 2" in out


def test_ack_and_snooze_a_firing_alert_and_see_it_in_status(
    cfg_path: Path, capsys: pytest.CaptureFixture[str], r: redis_sync.Redis, keys: Keys
) -> None:
    c = str(cfg_path)
    for sym in ("NVDA", "MSFT"):  # as the router records what is firing
        labels = {"symbol": sym, "rule": "nvda-high", "severity": "warning"}
        r.hset(keys.firing, f"nvda-high{{symbol={sym}}}", json.dumps(labels))
    rc, out, _ = run(capsys, "ack", "MSFT", "--by", "ann@desk", "--config", c)
    assert rc == 0 and out.strip() == (
        "acknowledged nvda-high{symbol=MSFT} (ann@desk): its escalation stops"
    )
    rc, out, _ = run(capsys, "status", "--config", c)
    assert "firing: 2" in out
    assert "nvda-high{symbol=MSFT}: acked by ann@desk via cli" in out
    assert "nvda-high{symbol=NVDA}: not acked" in out
    rc, out, _ = run(capsys, "snooze", "symbol=NVDA", "--for", "30m", "--by", "bob", "--config", c)
    assert rc == 0 and "for 30m: rule=nvda-high symbol=NVDA" in out
    rc, out, _ = run(capsys, "silence", "--config", c, "list")
    assert "rule=nvda-high symbol=NVDA" in out and "bob: snoozed via cli" in out
    rc, _, err = run(capsys, "ack", "TSLA", "--by", "ann", "--config", c)
    assert rc == 1 and "no firing alert matches 'TSLA'; firing now: nvda-high{symbol=MSFT}" in err
    rc, _, err = run(capsys, "ack", "nvda-high", "--by", "ann", "--config", c)
    assert rc == 1 and "matches 2 alerts" in err
