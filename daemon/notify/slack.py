"""Slack channel: `chat.postMessage` with a bot token through slack-sdk's `AsyncWebClient`.

Transport and threading; the message layout is `slack_blocks`. The first message about an alert
returns a receipt (`channel` id and `ts`, plus its blocks); the worker hands it back as
`Notification.thread` for the same alert's reminders and resolve, which go as thread replies, and
the resolve also edits the first message (`chat.update`) to show RESOLVED.

Retrying is the delivery worker's job, so the client does not retry 429s itself (Slack disables
apps that hammer it, alertmanager#2111): a 429 becomes a retryable `DeliveryError` carrying
`Retry-After` (read from `SlackApiError.response.headers`, seconds or an HTTP-date), which the
worker waits out in full before the next call, and the base class paces sends to Slack's one
message per second per channel.
Errors a retry cannot fix (bad token, wrong channel) are not retryable and say what to change in
`alerts.yaml`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.failure import DeliveryError, retry_after_from
from daemon.notify.notification import Notification, Receipt
from daemon.notify.slack_actions import Click, action_block, answered
from daemon.notify.slack_blocks import (
    SlackMessage,
    build_group,
    build_message,
    build_reply,
    resolved_parent,
)

__all__ = ["SlackConfig", "SlackNotifier"]

#: Slack `error` codes that mean "try again later" rather than "fix something".
_TRANSIENT: Final = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
#: `chat.update` errors meaning the message to edit is gone: post a new one instead.
_PARENT_GONE: Final = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
#: Larger parents are not kept in the receipt (the resolve then rebuilds the message).
_RECEIPT_BLOCKS_MAX: Final = 12_000

log = logging.getLogger(__name__)


class SlackConfig(ChannelConfig):
    """`channels.<name>` with `type: slack` in alerts.yaml."""

    type: Literal["slack"]
    token: SecretStr
    channel: str
    base_url: str = "https://slack.com/api/"
    timeout: float = 10
    signing_secret: SecretStr | None = Field(
        None,
        description="The Slack app's signing secret: firing messages get Acknowledge / Snooze / "
        "Silence buttons, answered at POST /hooks/slack/actions (the app's Request URL)",
    )
    app_token: SecretStr | None = Field(
        None,
        description="An app-level token (xapp-...): buttons answered over Socket Mode, no "
        "public endpoint needed",
    )
    allow_users: list[str] | None = Field(
        None,
        description="Slack user ids (U...) or names whose clicks count; omitted: anyone who can "
        "see the channel. Other clicks change nothing and are logged",
    )

    @field_validator("signing_secret", "app_token", mode="before")
    @classmethod
    def _unset(cls, v: Any) -> Any:
        return None if v in (None, "") else v  # an empty ${SLACK_SIGNING_SECRET:-}: not set

    @field_validator("app_token")
    @classmethod
    def _xapp(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("app_token must be an app-level token (xapp-...), from the Slack "
                             "app's Basic Information page, with connections:write")  # fmt: skip
        return v

    @property
    def interactive(self) -> bool:
        """Whether firing messages carry the desk's buttons (someone can answer the clicks)."""
        return self.signing_secret is not None or self.app_token is not None

    def allows(self, user_id: str, user_name: str) -> bool:
        return self.allow_users is None or bool({user_id, user_name} & set(self.allow_users))


class SlackNotifier(Notifier):
    """Posts each alert as one Block Kit message; follow-ups thread under it, resolve edits it."""

    kind: ClassVar[str] = "slack"
    config_model: ClassVar[type[ChannelConfig]] = SlackConfig
    body_maxlen: ClassVar[int] = 4000
    title_maxlen: ClassVar[int] = 150
    #: Slack allows about one message per second per channel, with short bursts.
    rate_limit: ClassVar[float | None] = 1.0
    rate_burst: ClassVar[int] = 3
    config: SlackConfig

    def __init__(self, name: str, config: SlackConfig):
        if not isinstance(config, SlackConfig):
            raise TypeError(f"SlackNotifier needs a SlackConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._client: AsyncWebClient | None = None

    def _get_client(self) -> AsyncWebClient:
        """Create the client on first use: its aiohttp session needs a running event loop."""
        if self._client is None:
            cfg = self.config
            # Our own session so connections are pooled across sends; it carries the timeout
            # (the SDK applies its `timeout` only to sessions it creates itself).
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=cfg.timeout))
            self._client = AsyncWebClient(
                token=cfg.token.get_secret_value(),
                base_url=cfg.base_url,
                timeout=math.ceil(cfg.timeout),
                session=session,
            )
        return self._client

    async def send(self, n: Notification) -> Receipt | None:
        if n.kind == "notice" or not n.alerts:
            return await self._post({"text": self.truncate(n.text), "attachments": []})
        if n.kind in ("group", "digest") or len(n.alerts) > 1:
            return await self._post(build_group(n.alerts, title=n.meta.get("title", "")))
        thread = n.thread
        if thread is not None and thread.get("channel") and thread.get("ts"):
            return await self._follow_up(n.alert, thread)
        message = build_message(n.alert)
        if self.config.interactive and n.alert.state == "firing":
            message["attachments"][0]["blocks"].insert(-1, action_block(n.alert, self.name))
        receipt = await self._post(message)
        blocks = json.dumps(message["attachments"][0]["blocks"], separators=(",", ":"))
        if len(blocks) <= _RECEIPT_BLOCKS_MAX:
            receipt["blocks"] = blocks  # so the resolve can edit it without losing its content
        return receipt

    async def _follow_up(self, alert: AlertEvent, thread: Receipt) -> Receipt:
        """A reminder or resolve of an alert already posted: a reply in its thread.

        On resolve the parent is edited first: `chat.update` is idempotent, so a retry after
        a failure in between never posts the reply twice. If the parent is gone (deleted), the
        resolve is posted as a new message instead.
        """
        channel, ts = thread["channel"], thread["ts"]
        if alert.state == "resolved":
            parent = resolved_parent(alert, _parent_blocks(thread))
            try:
                await self._call(
                    self._get_client().chat_update,
                    channel=channel,
                    ts=ts,
                    text=self.truncate(parent["text"]),
                    attachments=parent["attachments"],
                )
            except _ParentGone as gone:
                log.info(
                    "Slack channel %s: the first message of %s is gone (%s); posting the "
                    "resolve as a new message",
                    self.name,
                    alert.key,
                    gone,
                )
                return await self._post(build_message(alert))
        await self._post(build_reply(alert), channel=channel, thread_ts=ts)
        return dict(thread)  # replies belong to the parent: later ones thread under it too

    async def _post(
        self, message: SlackMessage, *, channel: str | None = None, thread_ts: str | None = None
    ) -> dict[str, str]:
        """`chat.postMessage`; the receipt names the channel by id, as Slack answered."""
        kwargs: dict[str, Any] = {
            "channel": channel or self.config.channel,
            "text": self.truncate(message["text"]),
            "unfurl_links": False,
        }
        if message["attachments"]:
            kwargs["attachments"] = message["attachments"]
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
        response = await self._call(self._get_client().chat_postMessage, **kwargs)
        return {"channel": str(response["channel"]), "ts": str(response["ts"])}

    async def _call(
        self, method: Callable[..., Awaitable[AsyncSlackResponse]], **kwargs: Any
    ) -> AsyncSlackResponse:
        """One Web API call, its failures mapped to `DeliveryError` (or `_ParentGone`)."""
        try:
            return await method(**kwargs)
        except SlackApiError as e:
            data = e.response.data
            error = str(data.get("error", "")) if isinstance(data, dict) else ""
            if error in _PARENT_GONE:
                raise _ParentGone(error) from e
            raise self._api_error(e) from e
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            detail = f"{type(e).__name__}: {e}".rstrip(": ")
            raise DeliveryError(
                f"Slack channel {self.name!r}: could not reach Slack ({detail}); will retry",
                retryable=True,
                reason=f"could not reach Slack ({type(e).__name__})",
            ) from e

    async def answer(self, click: Click, note: str, reply: str) -> None:
        """A click was acted on: the message updated in place (its buttons replaced by `note`),
        and `reply` in its thread. Failures are raised as `DeliveryError` for the caller to log:
        the click's effect (an ack) is already stored."""
        blocks = answered(click, note)
        attachments = (
            [{"color": click.color, "blocks": blocks}] if click.color else [{"blocks": blocks}]
        )
        client = self._get_client()
        await self._call(client.chat_update, channel=click.message_channel, ts=click.message_ts,
                         text=self.truncate(note), attachments=attachments)  # fmt: skip
        await self._call(client.chat_postMessage, channel=click.message_channel,
                         thread_ts=click.message_ts, text=self.truncate(reply))  # fmt: skip

    def preview(self, n: Notification) -> str:
        """The message as a reader sees it: fallback line, then the blocks' text."""
        n = self.prepare(n)
        if n.kind == "notice" or not n.alerts:
            return n.text
        if n.kind in ("group", "digest") or len(n.alerts) > 1:
            message = build_group(n.alerts, title=n.meta.get("title", ""))
        else:
            message = build_message(n.alert)
        lines = [message["text"], ""]
        for attachment in message["attachments"]:
            for block in attachment["blocks"]:
                lines.extend(_block_text(block))
        return "\n".join(lines).rstrip()

    def _api_error(self, e: SlackApiError) -> DeliveryError:
        """Map an HTTP status / `ok:false` error code to retryable or not, with a fix."""
        status: int = e.response.status_code
        data = e.response.data
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        where = f"Slack channel {self.name!r}"
        retry_after = retry_after_from(e.response.headers)
        if status == 429 or error in {"ratelimited", "rate_limited"}:
            wait = f"; Slack asks to wait {retry_after:g}s" if retry_after is not None else ""
            return DeliveryError(
                f"{where}: rate limited by Slack (HTTP {status}){wait}",
                retryable=True,
                retry_after=retry_after,
                reason="rate limited by Slack",
            )
        if status >= 500 or error in _TRANSIENT:
            code = f" ({error})" if error else ""
            return DeliveryError(
                f"{where}: Slack server error HTTP {status}{code}; will retry",
                retryable=True,
                retry_after=retry_after,  # a 503 may say when to come back
                reason=f"Slack server error (HTTP {status}{code})",
            )
        if error:
            return DeliveryError(f"Slack says {error}: {self._fix_for(error)}", retryable=False)
        return DeliveryError(f"{where}: unexpected Slack response HTTP {status}", retryable=False)

    def _fix_for(self, error: str) -> str:
        """What the operator should change, for the errors a retry can never fix."""
        ch = self._channel_display()
        key = f"channels.{self.name}"
        fixes = {
            "invalid_auth": f"the bot token is not valid; fix {key}.token (a xoxb- bot token)",
            "not_authed": f"no token was sent; set {key}.token",
            "token_revoked": f"the bot token was revoked; reinstall the app and update {key}.token",
            "token_expired": f"the bot token expired; issue a new one and update {key}.token",
            "account_inactive": (
                f"the bot's app or workspace account is deactivated; reinstall the Slack app "
                f"and update {key}.token"
            ),
            "missing_scope": (
                f"the bot token lacks the chat:write scope; add it, reinstall the app and update "
                f"{key}.token"
            ),
            "channel_not_found": f"invite the bot to {ch} or fix {key}.channel",
            "not_in_channel": f"invite the bot to {ch} (/invite @your-bot) or fix {key}.channel",
            "is_archived": f"{ch} is archived; unarchive it or point {key}.channel elsewhere",
        }
        return fixes.get(
            error,
            f"Slack rejected the message to {ch}; see https://api.slack.com/methods/chat.postMessage",
        )

    def _channel_display(self) -> str:
        ch = self.config.channel
        return ch if ch.startswith("#") or _CHANNEL_ID.match(ch) else f"#{ch}"

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.session is not None and not client.session.closed:
            await client.session.close()


class _ParentGone(Exception):
    """The message to edit no longer exists (deleted, or too old to edit)."""


def _parent_blocks(receipt: Receipt) -> list[dict[str, Any]] | None:
    raw = receipt.get("blocks")
    if not raw:
        return None
    try:
        blocks = json.loads(raw)
    except ValueError:
        return None
    return blocks if isinstance(blocks, list) and blocks else None


def _block_text(block: dict[str, Any]) -> list[str]:
    """The visible text of one block, for previews."""
    kind = block.get("type")
    if kind in ("header", "section") and "text" in block:
        return [str(block["text"]["text"])]
    if kind == "section":
        return [str(f["text"]).replace("\n", ": ", 1) for f in block.get("fields", [])]
    if kind == "context":
        return [str(e.get("text", "")) for e in block.get("elements", [])]
    return []
