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

    def source_cursor(self, source: str) -> str:
        """Hash of a source's resume position (replay row, loop count)."""
        return self._k("source", source, "cursor")

    def delivered(self, alert_id: str, channel: str) -> str:
        """Idempotency marker: set once this alert transition reached this channel."""
        return self._k("delivered", channel, alert_id)

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
    NOTIFY_GROUP = "notifier"
