"""The JSON API: what is firing, every rule's value against its threshold, recent alerts,
silences; and the desk's writes (acks, silences), which need the bearer token.

    GET    /api/alerts                  firing and pending alerts, value vs threshold, ack
    GET    /api/alerts/history?limit=N  the newest transitions (default 100, at most 1000)
    POST   /api/alerts/{key}/ack        {"by": "ann"}                    (token)
    GET    /api/rules                   every rule's alerts, whatever their state
    GET    /api/silences                active and recent silences
    POST   /api/silences                {"matchers": [...], "for": "2h", "author", "reason"} (token)
    DELETE /api/silences/{id}                                            (token)

A write without `Authorization: Bearer <http.token>` is refused: 403 when no token is set
(there is nothing it could match), 401 when it is wrong. `tickwatch alerts` reads `/api/alerts`.
The status page (`page.py`) sends the same rows: `views`, `active`, `by_rule`, `recent` and
`silence_list`.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daemon.alerts import AlertEvent
from daemon.durations import parse_duration
from daemon.notify import Desk, NoSuchAlert, SilenceStore
from daemon.rules import snapshot
from daemon.store import InspectStore

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["QUERY_TOKEN_PATHS", "Api", "authorized"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What a browser opens (the status page and its event stream): EventSource cannot send a
#: header, so a GET of these may carry the token as `?token=` instead.
QUERY_TOKEN_PATHS = frozenset({"/", "/events"})


def authorized(request: web.Request, token: str | None) -> web.Response | None:
    """None when the request carries the token (`?token=` too for a GET of a page path, see
    `QUERY_TOKEN_PATHS`); else the refusal to send."""
    if not token:
        return web.json_response(
            {"error": "writes are off: set http.token (e.g. ${TICKWATCH_API_TOKEN}) in "
                      "alerts.yaml and send it as Authorization: Bearer <token>"},
            status=403,
        )  # fmt: skip
    got = request.headers.get("Authorization", "")
    ok = hmac.compare_digest(got.encode(), f"Bearer {token}".encode())
    if not ok and request.method == "GET" and request.path in QUERY_TOKEN_PATHS:
        ok = hmac.compare_digest(request.query.get("token", "").encode(), token.encode())
    if not ok:
        hint = " (in a browser: /?token=<http.token>)" if request.path in QUERY_TOKEN_PATHS else ""
        return web.json_response({"error": "missing or wrong bearer token" + hint}, status=401)
    return None


class Api:
    """The handlers, answering from the running daemon and its Redis."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/api/alerts", self.alerts)
        r.add_get("/api/alerts/history", self.history)
        r.add_post("/api/alerts/{key:.+}/ack", self._write(self.ack))
        r.add_get("/api/rules", self.rules)
        r.add_get("/api/silences", self.silences)
        r.add_post("/api/silences", self._write(self.add_silence))
        r.add_delete("/api/silences/{id}", self._write(self.expire_silence))

    def _token(self) -> str | None:
        t = self.daemon.cfg.settings.http.token
        return t.get_secret_value() if t is not None else None

    def _write(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = authorized(request, self._token())
            return refused if refused is not None else await handler(request)

        return guarded

    def _desk(self) -> Desk:
        return Desk(*self._redis())

    async def views(self) -> list[dict[str, Any]]:
        """Every alert the rules know, with its ack and escalation (firing ones)."""
        ev = self.daemon.evaluator
        if ev is None:
            return []
        now = ev.stats.last_event_ms or int(time.time() * 1000)
        rows = [v.to_dict() for v in snapshot(ev.engine, now, ev.last)]
        desk = {f.key: f for f in await self._desk().firing()}
        for row in rows:
            f = desk.get(row["key"])
            if f is not None and f.number:
                row["number"] = f.number
            row["ack"] = (
                {"by": f.ack.by, "via": f.ack.via, "at_ms": f.ack.at_ms}
                if f is not None and f.ack is not None else None
            )  # fmt: skip
            row["escalation"] = (
                {"next_due_ms": f.escalation_due_ms, "steps": f.escalation_steps}
                if f is not None and f.escalation_due_ms is not None else None
            )  # fmt: skip
        return rows

    @staticmethod
    def active(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The firing and pending alerts of `views` (`/api/alerts`)."""
        return [r for r in views if r["state"] in ("pending", "firing")]

    @staticmethod
    def by_rule(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`views` grouped by rule, in order (`/api/rules`)."""
        rules: dict[str, list[dict[str, Any]]] = {}
        for row in views:
            rules.setdefault(row["rule"], []).append(row)
        return [{"name": n, "alerts": a} for n, a in rules.items()]

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` transitions, newest first (`/api/alerts/history`)."""
        redis, keys = self._redis()  # (refuses while Redis is not there)
        out = []
        for entry_id, text in await InspectStore(redis, keys).recent_alerts(limit):
            try:
                a = AlertEvent.from_json(text)
            except (ValueError, KeyError, TypeError):
                continue
            out.append({"id": entry_id, **a.to_dict()})
        return out

    async def silence_list(self) -> list[dict[str, Any]]:
        """Every silence on record, with whether it is in force now (`/api/silences`)."""
        store = SilenceStore(*self._redis())
        now = int(time.time() * 1000)
        return [{**s.to_dict(), "active": s.active(now)} for s in await store.all()]

    async def alerts(self, _: web.Request) -> web.Response:
        return web.json_response({"alerts": self.active(await self.views())})

    async def rules(self, _: web.Request) -> web.Response:
        return web.json_response({"rules": self.by_rule(await self.views())})

    async def history(self, request: web.Request) -> web.Response:
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        except ValueError:
            return web.json_response({"error": "limit must be a whole number"}, status=400)
        return web.json_response({"alerts": await self.recent(limit)})

    async def ack(self, request: web.Request) -> web.Response:
        body = await _json(request)
        by = str(body.get("by", "")).strip()
        try:
            a = await self._desk().ack(request.match_info["key"], by=by, via="api")
        except NoSuchAlert as e:
            return web.json_response({"error": str(e)}, status=404)
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response({"acked": a.alert_key, "by": a.by, "at_ms": a.at_ms})

    async def silences(self, _: web.Request) -> web.Response:
        return web.json_response({"silences": await self.silence_list()})

    async def add_silence(self, request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            for_ms = int(parse_duration(body.get("for", "")).total_seconds() * 1000)
            matchers = body.get("matchers")
            if not isinstance(matchers, list) or not all(isinstance(m, str) for m in matchers):
                raise ValueError('matchers must be a list of label matchers, e.g. ["symbol=NVDA"]')
            s = await SilenceStore(*self._redis()).add(
                matchers, author=str(body.get("author", "")), reason=str(body.get("reason", "")),
                ends_ms=int(time.time() * 1000) + for_ms,
            )  # fmt: skip
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)
        return web.json_response(s.to_dict(), status=201)

    async def expire_silence(self, request: web.Request) -> web.Response:
        s = await SilenceStore(*self._redis()).expire(request.match_info["id"])
        if s is None:
            return web.json_response({"error": "no such silence"}, status=404)
        return web.json_response(s.to_dict())

    def _redis(self) -> tuple[Any, Any]:
        if self.daemon.redis is None:
            raise web.HTTPServiceUnavailable(text="starting or stopping\n")
        return self.daemon.redis, self.daemon.keys


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON\n") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object\n")
    return body
