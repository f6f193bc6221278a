"""The Slack buttons on a firing message, and the clicks that come back: pure Block Kit and JSON.

A firing message of a Slack channel that takes clicks (it has a `signing_secret` or an
`app_token`) carries three controls: Acknowledge, a Snooze menu, and Silence the symbol for the
day. Each says which alert and which tickwatch channel it is about in its `value`, so a click
needs no lookup. A click comes back as a `block_actions` payload (over HTTP or Socket Mode):
`parse_click` turns it into a `Click` or says why not; `answered` is the message as it is
updated in place, the controls replaced by who did what and until when.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from daemon.alerts import AlertEvent

__all__ = ["SNOOZES", "Click", "action_block", "answered", "parse_click"]

ACK: Final = "tickwatch_ack"
SNOOZE: Final = "tickwatch_snooze"
SILENCE_DAY: Final = "tickwatch_silence_day"
#: The snooze menu: label → duration in minutes.
SNOOZES: Final[Mapping[str, int]] = {"1 hour": 60, "4 hours": 240, "1 day": 1440}

ClickKind = Literal["ack", "snooze", "silence_day"]


def action_block(alert: AlertEvent, channel: str) -> dict[str, Any]:
    """The controls under a firing message of tickwatch channel `channel`."""
    value = json.dumps({"k": alert.key, "c": channel}, separators=(",", ":"))
    elements: list[dict[str, Any]] = [
        {"type": "button", "action_id": ACK, "style": "primary", "value": value,
         "text": {"type": "plain_text", "text": "Acknowledge"}},
        {"type": "static_select", "action_id": SNOOZE,
         "placeholder": {"type": "plain_text", "text": "Snooze"},
         "options": [{"text": {"type": "plain_text", "text": label},
                      "value": json.dumps({"k": alert.key, "c": channel, "m": minutes},
                                          separators=(",", ":"))}
                     for label, minutes in SNOOZES.items()]},
    ]  # fmt: skip
    symbol = alert.labels.get("symbol")
    if symbol:
        elements.append(
            {"type": "button", "action_id": SILENCE_DAY, "value": value,
             "text": {"type": "plain_text", "text": f"Silence {symbol} today"}}
        )  # fmt: skip
    return {"type": "actions", "block_id": "tickwatch_desk", "elements": elements}


@dataclass(frozen=True, slots=True)
class Click:
    """One click on a tickwatch control: who, what, on which alert, and where the message is."""

    kind: ClickKind
    alert_key: str
    #: The tickwatch channel the message went out on (its config holds the allow-list).
    channel: str
    user_id: str
    user_name: str
    #: Where the clicked message is, to update it and reply in its thread.
    message_channel: str
    message_ts: str
    snooze_minutes: int = 0
    #: The message's blocks as Slack holds them (the controls among them), and its colour.
    blocks: tuple[dict[str, Any], ...] = ()
    color: str = ""


def parse_click(payload: Mapping[str, Any]) -> Click | None:
    """The click in a `block_actions` payload, or None if it is not one of ours (another app's
    control, a different interaction); ValueError when ours but malformed."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions") or []
    action = next((a for a in actions if str(a.get("action_id", "")).startswith("tickwatch_")),
                  None)  # fmt: skip
    if action is None:
        return None
    kind: ClickKind = {ACK: "ack", SNOOZE: "snooze", SILENCE_DAY: "silence_day"}.get(
        action["action_id"], "ack"
    )  # type: ignore[assignment]
    if action["action_id"] not in (ACK, SNOOZE, SILENCE_DAY):
        raise ValueError(f"unknown tickwatch control {action['action_id']!r}")
    raw = (
        (action.get("selected_option") or {}).get("value")
        if kind == "snooze"
        else (action.get("value"))
    )
    try:
        value = json.loads(raw or "")
        key, channel = str(value["k"]), str(value["c"])
        minutes = int(value.get("m", 0))
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"the control's value is not tickwatch's: {e!r}") from None
    if kind == "snooze" and not 0 < minutes <= 7 * 1440:
        raise ValueError(f"a snooze of {minutes} minutes is not on the menu")
    user = payload.get("user") or {}
    message = payload.get("message") or {}
    container = payload.get("container") or {}
    where = (payload.get("channel") or {}).get("id") or container.get("channel_id", "")
    ts = message.get("ts") or container.get("message_ts", "")
    attachments = message.get("attachments") or [{}]
    blocks = tuple(attachments[0].get("blocks") or message.get("blocks") or ())
    color = str(attachments[0].get("color") or "")
    if color and not color.startswith("#"):
        color = "#" + color  # Slack hands the colour back without its '#'
    return Click(kind, key, channel, str(user.get("id", "")),
                 str(user.get("username") or user.get("name") or user.get("id", "")),
                 str(where), str(ts), minutes, blocks, color)  # fmt: skip


def answered(click: Click, note: str) -> list[dict[str, Any]]:
    """The clicked message's blocks with the controls replaced by `note` (who did what)."""
    blocks = [copy.deepcopy(b) for b in click.blocks if b.get("type") != "actions"]
    line = {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "context" else len(blocks)
    blocks.insert(at, line)
    return blocks
