"""Slack channel: `chat.postMessage` with a bot token through slack-sdk's `AsyncWebClient`.

Transport only; the message layout is `slack_blocks`. Retrying is the dispatcher's job, so the
client does not retry 429s itself (Slack disables apps that hammer it, alertmanager#2111): a 429
becomes a retryable `DeliveryError` carrying `Retry-After`. Errors a retry cannot fix (bad token,
wrong channel) are not retryable and say what to change in `alerts.yaml`.
"""

from __future__ import annotations

import math
import re
from typing import ClassVar, Final, Literal

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from daemon.notify.base import ChannelConfig, DeliveryError, Notification, Notifier, Receipt
from daemon.notify.slack_blocks import build_message

__all__ = ["SlackConfig", "SlackNotifier"]

#: Slack `error` codes that mean "try again later" rather than "fix something".
_TRANSIENT: Final = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackConfig(ChannelConfig):
    """`channels.<name>` with `type: slack` in alerts.yaml."""

    type: Literal["slack"]
    token: SecretStr
    channel: str
    base_url: str = "https://slack.com/api/"
    timeout: float = 10


class SlackNotifier(Notifier):
    """Posts each alert transition as one Block Kit message to one channel."""

    kind: ClassVar[str] = "slack"
    config_model: ClassVar[type[ChannelConfig]] = SlackConfig
    body_maxlen: ClassVar[int] = 4000
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
        message = build_message(n.alert)
        client = self._get_client()
        try:
            await client.chat_postMessage(
                channel=self.config.channel,
                text=self.truncate(message["text"]),
                attachments=message["attachments"],
                unfurl_links=False,
            )
            return None
        except SlackApiError as e:
            raise self._api_error(e) from e
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            detail = self._scrub(f"{type(e).__name__}: {e}".rstrip(": "))
            raise DeliveryError(
                f"Slack channel {self.name!r}: could not reach Slack ({detail}); will retry",
                retryable=True,
            ) from e

    def _api_error(self, e: SlackApiError) -> DeliveryError:
        """Map an HTTP status / `ok:false` error code to retryable or not, with a fix."""
        status: int = e.response.status_code
        data = e.response.data
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        where = f"Slack channel {self.name!r}"
        if status == 429 or error in {"ratelimited", "rate_limited"}:
            retry_after = _parse_retry_after(e.response.headers.get("Retry-After"))
            wait = f"; Slack asks to wait {retry_after:g}s" if retry_after is not None else ""
            return DeliveryError(
                f"{where}: rate limited by Slack (HTTP {status}){wait}",
                retryable=True,
                retry_after=retry_after,
            )
        if status >= 500 or error in _TRANSIENT:
            code = f" ({error})" if error else ""
            return DeliveryError(
                f"{where}: Slack server error HTTP {status}{code}; will retry", retryable=True
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

    def _scrub(self, text: str) -> str:
        """Belt and braces: no error text we build may ever carry the token."""
        token = self.config.token.get_secret_value()
        return text.replace(token, "***") if token else text

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.session is not None and not client.session.closed:
            await client.session.close()


def _parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (Slack sends an integer); None when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
