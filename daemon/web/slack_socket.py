"""Socket Mode: clicks on the desk's buttons over Slack's websocket, with an app-level token.

The other way in beside `slack_hook.py`, and the one a Slack channel with an `app_token`
(xapp-...) gets: no public endpoint. One slack-sdk `SocketModeClient` per Slack app (per
distinct app token among the running Slack channels), its Web API at the channel's `base_url`.
We ask `apps.connections.open` for the first websocket URL ourselves, retrying with a growing
delay and saying what to fix when Slack refuses the token; once connected the client keeps the
link up by itself (pings, Slack's `disconnect` refreshes, reconnects). Every envelope is acked
at once by its `envelope_id`; a click on our controls then acts exactly as over HTTP
(`notify.answer_click`). The app token is a secret: logs name the channels, never the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import aiohttp
from slack_sdk.errors import SlackApiError

from daemon.notify import (
    ChannelConfig,
    Desk,
    Notifier,
    answer_click,
    parse_click,
    parse_retry_after,
)
from daemon.store import Client, Keys

if TYPE_CHECKING:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest

__all__ = ["SlackSocket"]

log = logging.getLogger("tickwatch.slack")

#: The wait before the first retry of a refused or failed connection; it doubles up to the max.
RETRY_FIRST_S: Final = 5.0
RETRY_MAX_S: Final = 300.0
#: How long opening the websocket (after `apps.connections.open`) may take before we ask again.
OPEN_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class _App:
    """One Slack app as the channels name it: its app token, its Web API, its channels."""

    token: str = field(repr=False)
    base_url: str
    timeout: float
    channels: tuple[str, ...]

    @property
    def label(self) -> str:
        return ("channel " if len(self.channels) == 1 else "channels ") + ", ".join(self.channels)


class _Link:
    """One app's Socket Mode client, and the task that connects it the first time."""

    def __init__(
        self,
        app: _App,
        on_request: Callable[[AsyncBaseSocketModeClient, SocketModeRequest], Awaitable[None]],
        retry_s: float,
    ) -> None:
        # Imported here: a config without Socket Mode never loads the Socket Mode client.
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.web.async_client import AsyncWebClient

        self.app = app
        web = AsyncWebClient(token=app.token, base_url=app.base_url,
                             timeout=math.ceil(app.timeout))  # fmt: skip
        self.client: SocketModeClient = SocketModeClient(app_token=app.token, web_client=web)
        self.client.socket_mode_request_listeners.append(on_request)
        self._retry_s = retry_s
        self.connected = asyncio.Event()
        self._task = asyncio.create_task(self._connect(), name=f"slack socket {app.label}")

    async def _connect(self) -> None:
        app, delay = self.app, self._retry_s
        while True:
            try:
                opened = await self.client.web_client.apps_connections_open(app_token=app.token)
                self.client.wss_uri = str(opened["url"])
                async with asyncio.timeout(OPEN_TIMEOUT_S):
                    await self.client.connect()  # type: ignore[no-untyped-call]
                self.connected.set()
                log.info("slack: %s: Socket Mode connected, the desk's clicks arrive over it",
                         app.label)  # fmt: skip
                return
            except SlackApiError as e:
                data = e.response.data
                error = str(data.get("error", "")) if isinstance(data, dict) else ""
                if e.response.status_code == 429 or error == "ratelimited":
                    wait = _retry_after_s(e.response.headers.get("Retry-After"), delay)
                    log.warning("slack: %s: Slack rate-limits Socket Mode; retrying in %gs",
                                app.label, wait)  # fmt: skip
                    await asyncio.sleep(wait)
                    continue
                key = f"channels.{app.channels[0]}.app_token"
                log.error("slack: %s: Slack refused Socket Mode (%s): check that %s is the "
                          "app's app-level token (xapp-..., scope connections:write) and that "
                          "Socket Mode is on in the Slack app's settings; buttons there do "
                          "nothing until then; retrying in %gs", app.label,
                          error or f"HTTP {e.response.status_code}", key, delay)  # fmt: skip
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                log.warning("slack: %s: cannot reach Slack for Socket Mode (%s); retrying in "
                            "%gs", app.label, type(e).__name__, delay)  # fmt: skip
            except Exception as e:  # an answer we cannot read: keep trying, never end silently
                log.warning("slack: %s: Socket Mode could not connect (%s); retrying in %gs",
                            app.label, type(e).__name__, delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(Exception):
            await self.client.close()  # type: ignore[no-untyped-call]


def _retry_after_s(header: str | None, default: float) -> float:
    """Slack's `Retry-After` in seconds (`parse_retry_after`, kept within 1 s and
    `RETRY_MAX_S`), or `default` when it sent none we can read."""
    seconds = parse_retry_after(header)
    return default if seconds is None else min(max(seconds, 1.0), RETRY_MAX_S)


class SlackSocket:
    """The Socket Mode links of the running Slack channels, reading the daemon's current
    channels, notifiers and Redis at each click."""

    def __init__(
        self,
        channels: Callable[[], Mapping[str, ChannelConfig]],
        notifiers: Callable[[], Mapping[str, Notifier]],
        redis: Callable[[], Client | None],
        keys: Keys,
        *,
        retry_s: float = RETRY_FIRST_S,
    ) -> None:
        self.channels, self.notifiers, self.redis, self.keys = channels, notifiers, redis, keys
        self.retry_s = retry_s
        self._links: dict[tuple[str, str], _Link] = {}

    def _apps(self) -> dict[tuple[str, str], _App]:
        """The Slack apps of the running Slack channels with an `app_token`, by (token, url)."""
        running = self.notifiers()
        names: dict[tuple[str, str], list[str]] = {}
        timeouts: dict[tuple[str, str], float] = {}
        for name, ch in sorted(self.channels().items()):
            token = getattr(ch, "app_token", None)
            if ch.type != "slack" or token is None or name not in running:
                continue
            key = (str(token.get_secret_value()), str(getattr(ch, "base_url", "")))
            names.setdefault(key, []).append(name)
            timeouts.setdefault(key, float(getattr(ch, "timeout", 10)))
        return {k: _App(k[0], k[1], timeouts[k], tuple(v)) for k, v in names.items()}

    @property
    def links(self) -> int:
        """How many Slack apps are linked, or being linked."""
        return len(self._links)

    async def start(self) -> None:
        """Open a link per Slack app the channels name; it connects in the background (a
        refusal is logged and retried, never raised). Called again after a reload, it opens
        the new apps' links and closes those no channel names any more."""
        wanted = self._apps()
        for key in [k for k in self._links if k not in wanted]:
            await self._links.pop(key).close()
        for key, app in wanted.items():
            if key not in self._links:
                self._links[key] = _Link(app, self._on_request, self.retry_s)

    async def stop(self) -> None:
        links, self._links = self._links, {}
        for link in links.values():
            await link.close()

    async def wait_connected(self, timeout: float) -> bool:
        """Whether every link is connected within `timeout` seconds (for tests, start-up)."""
        try:
            async with asyncio.timeout(timeout):
                for link in list(self._links.values()):
                    await link.connected.wait()
        except TimeoutError:
            return False
        return True

    async def _on_request(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        """One envelope: acked at once (Slack redelivers what is not), then a click acted on."""
        from slack_sdk.socket_mode.response import SocketModeResponse

        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.type != "interactive":
            return
        try:
            click = parse_click(req.payload)
        except ValueError as e:
            log.warning("slack: an interaction we cannot read: %s", e)
            return
        if click is None:
            return  # not one of our controls
        redis = self.redis()
        if redis is None:
            log.warning("slack: %s's %s on %s came while the daemon starts or stops: nothing "
                        "was done", click.user_name, click.kind, click.alert_key)  # fmt: skip
            return
        try:
            await answer_click(click, Desk(redis, self.keys), self.channels(), self.notifiers())
        except Exception as e:  # Redis away: the click is lost, say so rather than die silently
            log.warning("slack: %s's %s on %s may not have been done: %s: %s", click.user_name,
                        click.kind, click.alert_key, type(e).__name__, e)  # fmt: skip
