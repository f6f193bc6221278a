"""What an SMS reply asks for: `ACK`, `ACK 12`, `SNOOZE 2H`, `SNOOZE 30M 12`, `HELP`, and
Twilio's opt-out words (`STOP`, `START` and their synonyms). Pure: text in, a `Command` out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["HELP", "Command", "parse_command"]

#: Twilio's default opt-out and opt-in keywords (Advanced Opt-Out): Twilio itself stops and
#: resumes sending to the number; the desk records it too.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                        "OPTOUT"})  # fmt: skip
START_WORDS = frozenset({"START", "YES", "UNSTOP"})

HELP = ("tickwatch: reply ACK to acknowledge (ACK 12 for alert #12), SNOOZE 2H (or SNOOZE 30M 12) "
        "to hold it, STOP to stop texts.")  # fmt: skip

_ACK = re.compile(r"^(?:ACK|OK|SEEN)(?:\s+#?(\d{1,3}))?$")
_SNOOZE = re.compile(r"^SNOOZE\s+(\d{1,3})\s*(M|MIN|H|HR|D)?(?:\s+#?(\d{1,3}))?$")
_UNIT_MIN = {"M": 1, "MIN": 1, "H": 60, "HR": 60, "D": 1440, None: 60}


@dataclass(frozen=True, slots=True)
class Command:
    kind: Literal["ack", "snooze", "stop", "start", "help", "unknown"]
    #: The alert number the reply names (`ACK 12`), or None: the one firing alert.
    number: int | None = None
    minutes: int = 0


def parse_command(body: str) -> Command:
    text = " ".join(body.strip().upper().split())
    if text in STOP_WORDS:
        return Command("stop")
    if text in START_WORDS:
        return Command("start")
    if text in ("HELP", "INFO", "?"):
        return Command("help")
    m = _ACK.match(text)
    if m:
        return Command("ack", int(m.group(1)) if m.group(1) else None)
    m = _SNOOZE.match(text)
    if m:
        minutes = int(m.group(1)) * _UNIT_MIN[m.group(2)]
        if 0 < minutes <= 7 * 1440:
            return Command("snooze", int(m.group(3)) if m.group(3) else None, minutes)
    return Command("unknown")
