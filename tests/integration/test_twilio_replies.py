"""SMS replies to the desk at `POST /hooks/twilio/sms`, signed as Twilio signs them.

Real parts: Redis, the router and workers sending through the twilio client to the loopback fake
of Twilio (so the texts carry the desk's alert numbers), and the handler served by aiohttp on a
loopback port, its signatures made by twilio's own `RequestValidator`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from daemon.notify import HELP, Desk
from daemon.notify.delivery import Delivery
from daemon.store import Keys
from daemon.web.twilio_hook import TwilioHook
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until
from tests.integration.test_delivery import FAST, Running, alert, real_notifiers, settings

PHONE = "+15550100001"  # the `to` number of the sms channel in real_notifiers


@dataclass
class Phone:
    url: str
    token: str
    twilio: FakeTwilioServer
    delivery: Delivery

    async def reply(self, body: str, *, sender: str = PHONE, token: str | None = None,
                    signed: bool = True) -> tuple[int, str]:  # fmt: skip
        params = {"From": sender, "To": "+15550100000", "Body": body, "MessageSid": "SM1",
                  "AccountSid": self.twilio.account_sid}  # fmt: skip
        headers = {}
        if signed:
            sig = RequestValidator(token or self.token).compute_signature(self.url, params)
            headers["X-Twilio-Signature"] = sig
        async with aiohttp.ClientSession() as s, s.post(self.url, data=params,
                                                        headers=headers) as r:  # fmt: skip
            return r.status, await r.text()


@pytest_asyncio.fixture
async def phone(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> AsyncIterator[Phone]:
    notifiers = real_notifiers(slack_server, twilio_server)
    channels = {name: n.config for name, n in notifiers.items()}
    # as the daemon wires it (`Daemon._opted_out`): the SMS channel asks who replied STOP
    notifiers["sms"].opted_out = Desk(redis, keys).opted_out  # type: ignore[attr-defined]
    d = Delivery(redis, keys, settings(notifiers), notifiers, policy=FAST)
    run = Running(d)
    for i, sym in enumerate(("NVDA", "MSFT"), 1):
        await redis.xadd(keys.outbox, {"alert": alert(i, ("sms",), symbol=sym).to_json()})
    await twilio_server.wait_for(lambda _: len(twilio_server.sent) == 2)
    app = web.Application()
    app.router.add_post("/hooks/twilio/sms", TwilioHook(lambda: channels, lambda: redis,
                                                        keys).handle)  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/twilio/sms"
    try:
        yield Phone(url, twilio_server.auth_token, twilio_server, d)
    finally:
        await runner.cleanup()
        await run.stop()


def numbers(twilio: FakeTwilioServer) -> dict[str, int]:
    """Symbol → the alert number its text carried (`#12 FIRING ...`)."""
    out = {}
    for m in twilio.sent:
        head, _, rest = m["body"].partition(" ")
        assert head.startswith("#"), m["body"]
        out["NVDA" if "NVDA" in rest else "MSFT"] = int(head[1:])
    return out


async def test_texts_carry_numbers_and_ack_12_acknowledges_that_alert(
    phone: Phone, redis: Redis, keys: Keys
) -> None:
    n = numbers(phone.twilio)
    assert sorted(n.values()) == [1, 2]
    status, text = await phone.reply("ACK")  # two firing: which?
    assert status == 200
    assert (
        f"2 alerts are firing: #{n['NVDA']} nvda-high" in text
        and "reply ACK &lt;number&gt;" in text
    )
    status, text = await phone.reply(f"ack {n['MSFT']}")
    assert (
        status == 200 and "Acknowledged nvda-high{n=2,symbol=MSFT}: its escalation stops." in text
    )
    acks = {k: json.loads(v) for k, v in (await redis.hgetall(keys.acks)).items()}
    assert list(acks) == ["nvda-high{n=2,symbol=MSFT}"]
    msft = acks["nvda-high{n=2,symbol=MSFT}"]
    assert (msft["by"], msft["via"]) == (PHONE, "sms")
    status, text = await phone.reply("ACK")  # now only NVDA is unacknowledged
    assert "Acknowledged nvda-high{n=1,symbol=NVDA}" in text
    status, text = await phone.reply("ACK 77")
    assert "alert #77 is not firing" in text


async def test_snooze_help_stop_and_start(phone: Phone, redis: Redis, keys: Keys) -> None:
    n = numbers(phone.twilio)
    status, text = await phone.reply(f"SNOOZE 2H {n['NVDA']}")
    assert status == 200 and "Snoozed nvda-high{n=1,symbol=NVDA} for 120 min" in text
    [s] = [json.loads(v) for v in (await redis.hgetall(keys.silences)).values()]
    assert sorted(s["matchers"]) == ["n=1", "rule=nvda-high", "symbol=NVDA"]
    assert s["author"] == PHONE
    assert HELP.replace("<", "&lt;") in (await phone.reply("help"))[1]
    assert HELP in (await phone.reply("what is this"))[1]
    status, text = await phone.reply("STOP")
    assert status == 200 and "<Message>" not in text  # Twilio answers its own opt-out words
    assert json.loads((await redis.hgetall(keys.sms_opt_outs))[PHONE])["channel"] == "sms"
    await phone.reply("start")
    assert await redis.hgetall(keys.sms_opt_outs) == {}


@pytest.mark.parametrize(
    "kw",
    [{"signed": False}, {"token": "f" * 32}, {"sender": "+15550109999"}],
    ids=["unsigned", "wrong auth token", "a number not on the channel"],
)
async def test_unsigned_mis_signed_or_strangers_are_refused_and_change_nothing(
    phone: Phone, redis: Redis, keys: Keys, kw: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    status, _ = await phone.reply("ACK 1", **kw)  # type: ignore[arg-type]
    assert status == 403
    assert await redis.hgetall(keys.acks) == {}
    assert "twilio: " in caplog.text and ("refused" in caplog.text or "ignored" in caplog.text)


async def test_a_phone_that_replied_stop_is_not_texted_until_start(
    phone: Phone, redis: Redis, keys: Keys
) -> None:
    await phone.reply("STOP")
    await redis.xadd(keys.outbox, {"alert": alert(3, ("sms",), symbol="AMD").to_json()})
    await wait_until(lambda: phone.delivery.sent["sms"] == 3, 10, "the AMD alert handled")
    assert len(phone.twilio.sent) == 2  # not texted
    await phone.reply("START")
    await redis.xadd(keys.outbox, {"alert": alert(4, ("sms",), symbol="TSLA").to_json()})
    await phone.twilio.wait_for(lambda _: len(phone.twilio.sent) == 3)
    assert "TSLA" in phone.twilio.sent[-1]["body"]
