"""`POST /hooks/twilio/sms`: SMS replies to the desk, from the Twilio number's Messaging webhook.

Each request must carry a valid `X-Twilio-Signature` for one of the SMS channels, checked with
twilio's own `RequestValidator` against the channel's `webhook_url` (the public URL Twilio posts
to; the request's own URL when unset) and auth token: anything else is 403 and changes nothing.
The sender must be one of that channel's `to` numbers (403 otherwise, logged). The reply is
TwiML: what was done, or what to send instead (`notify.sms_commands.HELP`). STOP and START are
Twilio's opt-out words: Twilio stops and resumes texting the number itself (and answers it), so
the desk only records them and answers nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from daemon.notify import HELP, ChannelConfig, Desk, NoSuchAlert, SmsConfig, parse_command
from daemon.store import Client, Keys

__all__ = ["TwilioHook"]

log = logging.getLogger("tickwatch.http")


def _twiml(text: str | None) -> web.Response:
    reply = MessagingResponse()
    if text:
        reply.message(text)
    return web.Response(text=str(reply), content_type="text/xml")


class TwilioHook:
    """The handler, reading the daemon's current channels and Redis at each call."""

    def __init__(
        self,
        channels: Callable[[], Mapping[str, ChannelConfig]],
        redis: Callable[[], Client | None],
        keys: Keys,
    ) -> None:
        self.channels, self.redis, self.keys = channels, redis, keys

    def _channel(
        self, request: web.Request, params: dict[str, str]
    ) -> tuple[str, SmsConfig] | None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            return None
        for name, cfg in self.channels().items():
            if not isinstance(cfg, SmsConfig):
                continue
            url = cfg.webhook_url or str(request.url)
            validator = RequestValidator(cfg.auth_token.get_secret_value())
            if validator.validate(url, params, signature):
                return name, cfg
        return None

    async def handle(self, request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        found = self._channel(request, params)
        if found is None:
            log.warning("twilio: refused a request to %s: no valid X-Twilio-Signature for any SMS "
                        "channel (check its webhook_url and auth token)", request.path)  # fmt: skip
            return web.Response(status=403, text="invalid Twilio signature\n")
        name, cfg = found
        sender = params.get("From", "")
        if sender not in cfg.to:
            log.warning("twilio: a reply from %s, which is not a `to` number of channel %s: "
                        "ignored", sender, name)  # fmt: skip
            return web.Response(status=403, text="this number may not answer alerts\n")
        redis = self.redis()
        if redis is None:
            return web.Response(status=503, text="starting or stopping\n")
        return _twiml(await self._act(Desk(redis, self.keys), name, sender, params.get("Body", "")))

    async def _act(self, desk: Desk, channel: str, sender: str, body: str) -> str | None:
        cmd = parse_command(body)
        if cmd.kind in ("stop", "start"):
            await desk.opt_out(sender, channel=channel, stop=cmd.kind == "stop")
            log.info("twilio: %s sent %s on %s", sender, cmd.kind.upper(), channel)
            return None  # Twilio answers its own opt-out words
        if cmd.kind in ("help", "unknown"):
            return HELP
        try:
            key = await desk.by_number(cmd.number)
            if cmd.kind == "ack":
                await desk.ack(key, by=sender, via="sms")
                return f"Acknowledged {key}: its escalation stops."
            s = await desk.snooze(key, for_ms=cmd.minutes * 60_000, by=sender, via="sms")
            return f"Snoozed {key} for {cmd.minutes} min (silence {s.id})."
        except NoSuchAlert as e:
            return f"tickwatch: {e}."
