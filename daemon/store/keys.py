"""Every Redis key and stream name tickwatch uses, and nothing else spells one.

Copied from arq's `constants.py` discipline: one module owns the names, so a prefix change, a
Cluster migration or a key audit is a one-file job. All keys share one hash tag (`{prefix}`)
so the multi-key MULTI/EXEC that commits an evaluation batch stays in one Cluster slot.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys"]


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix, e.g. `Keys("tw")` → `{tw}:ticks`."""

    prefix: str = "tw"

    def _k(self, *parts: str) -> str:
        return ":".join((f"{{{self.prefix}}}", *parts))

    # --- streams -----------------------------------------------------------------------
    @property
    def ticks(self) -> str:
        """Stream of normalized ticks from every source."""
        return self._k("ticks")

    @property
    def news(self) -> str:
        """Stream of normalized headlines."""
        return self._k("news")

    @property
    def outbox(self) -> str:
        """Stream of alert transitions waiting for delivery."""
        return self._k("outbox")

    @property
    def deadletter(self) -> str:
        """Deliveries that failed for good, kept for inspection and retry."""
        return self._k("deadletter")

    # --- hashes ------------------------------------------------------------------------
    @property
    def latest(self) -> str:
        """Hash symbol → "price ts_ms": the last accepted price from the sources."""
        return self._k("latest")

    @property
    def rejects(self) -> str:
        """Hash reason → count of events refused at the edge."""
        return self._k("rejects")

    @property
    def alert_state(self) -> str:
        """Hash alert key → JSON of its lifecycle state (pending since, firing seq, ...)."""
        return self._k("alerts", "state")

    @property
    def eval_checkpoint(self) -> str:
        """Hash of the evaluator's own view: last price per symbol and anchor prices."""
        return self._k("eval", "checkpoint")

    @property
    def earnings_calendar(self) -> str:
        """Hash "SYMBOL|source" → JSON list of that provider's earnings reports for the symbol."""
        return self._k("calendar", "earnings")

    def source_cursor(self, source: str) -> str:
        """Hash of a source's resume position (replay row, loop count)."""
        return self._k("source", source, "cursor")

    @property
    def sources_status(self) -> str:
        """Hash source name → JSON status of a live feed (state, message rate, errors)."""
        return self._k("sources", "status")

    def delivered(self, key: str, channel: str) -> str:
        """Idempotency marker of one notification on one channel: "sending", then "done"."""
        return self._k("delivered", channel, key)

    # --- delivery pipeline -------------------------------------------------------------
    def deliver(self, channel: str) -> str:
        """Stream of notifications for one channel, read by that channel's worker only."""
        return self._k("deliver", channel)

    def receipt(self, channel: str, alert_key: str, seq: int) -> str:
        """What a channel said about an alert's first message (Slack ts), to thread under it."""
        return self._k("receipt", channel, f"{alert_key}#{seq}")

    @property
    def firing(self) -> str:
        """Hash alert key → JSON routing labels of every alert firing now (for inhibition)."""
        return self._k("notify", "firing")

    @property
    def told(self) -> str:
        """Hash "alert key#seq" → channels its firing went to (where its resolve must go)."""
        return self._k("notify", "told")

    @property
    def groups(self) -> str:
        """Hash group key → JSON state of an alert group (pending, firing, next flush)."""
        return self._k("notify", "groups")

    @property
    def instances(self) -> str:
        """Hash instance name → JSON of its role (primary, standby) and when it last said so."""
        return self._k("instances")

    def lease(self, name: str) -> str:
        """A lease one instance holds at a time (value: the holder; it expires unless renewed)."""
        return self._k("lease", name)

    @property
    def acks(self) -> str:
        """Hash alert key → JSON acknowledgement (who, how, when) of its current firing."""
        return self._k("desk", "acks")

    @property
    def sms_opt_outs(self) -> str:
        """Hash phone number → JSON of its STOP (when, which channel): texts to it are held."""
        return self._k("desk", "sms_opt_outs")

    @property
    def numbers(self) -> str:
        """Hash of the desk's short alert numbers: "n:<number>" → "alert key#seq", and
        "k:<alert key#seq>" → number; with the counter under "next"."""
        return self._k("desk", "numbers")

    @property
    def escalations(self) -> str:
        """Sorted set "alert key#seq" → when its next escalation step is due (epoch ms)."""
        return self._k("desk", "escalations")

    @property
    def escalation_state(self) -> str:
        """Hash "alert key#seq" → JSON of an escalation under way (the alert, its step)."""
        return self._k("desk", "escalation")

    @property
    def silences(self) -> str:
        """Hash silence id → JSON silence (matchers, author, reason, start, end)."""
        return self._k("silences")

    @property
    def suppressed(self) -> str:
        """Hash "outcome:channel" → count of transitions recorded but not sent (and why)."""
        return self._k("notify", "suppressed")

    @property
    def delivery_waits(self) -> str:
        """Hash "channel|consumer" → JSON of a channel worker waiting to retry (why, until when)."""
        return self._k("notify", "waits")

    def sent_today(self, channel: str, day: str) -> str:
        """Counter of messages a channel sent on a New York day (its daily cap)."""
        return self._k("notify", "sent", channel, day)

    @property
    def ops_seq(self) -> str:
        """Counter numbering the daemon's own ops alerts (each one a distinct transition)."""
        return self._k("ops", "seq")

    @property
    def heartbeat(self) -> str:
        """TTL'd liveness summary written by the daemon (arq's `record_health`)."""
        return self._k("heartbeat")

    # --- consumer groups ---------------------------------------------------------------
    EVAL_GROUP = "evaluator"
    #: The router's group on the outbox (named "notifier" since before there was a router).
    NOTIFY_GROUP = "notifier"
    DELIVER_GROUP = "deliver"
    #: The escalator's group on the outbox: it sees every transition, as the router does.
    ESCALATE_GROUP = "escalator"

    # --- delivery (notify side) ---
    def cap_notice(self, channel: str, day: str) -> str:
        """Set once the day a channel reaches its daily cap, so the cap notice goes out once."""
        return self._k("notify", "sent", channel, day, "told")  # `sent_today(...)` + ":told"
