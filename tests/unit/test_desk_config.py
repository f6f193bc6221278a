"""The desk's settings on channels: what makes Slack interactive, and the Twilio webhook URL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from daemon.notify.slack import SlackConfig
from daemon.notify.sms import SmsConfig

SLACK = {"type": "slack", "token": "xoxb-1-2", "channel": "#desk"}
SMS = {"type": "sms", "auth_token": "t" * 32, "from": "+15550100000", "to": ["+15550100001"]}


def test_empty_secrets_from_an_unset_variable_leave_slack_without_buttons() -> None:
    cfg = SlackConfig.model_validate({**SLACK, "signing_secret": "", "app_token": ""})
    assert (cfg.signing_secret, cfg.app_token, cfg.interactive) == (None, None, False)
    assert SlackConfig.model_validate({**SLACK, "signing_secret": "abc"}).interactive
    assert SlackConfig.model_validate({**SLACK, "app_token": "xapp-1-A-2-b"}).interactive


def test_an_app_token_that_is_not_app_level_is_refused_with_where_to_find_one() -> None:
    with pytest.raises(ValidationError, match=r"app-level token \(xapp-\.\.\.\)"):
        SlackConfig.model_validate({**SLACK, "app_token": "xoxb-not-app-level"})


def test_allow_users_matches_an_id_or_a_name() -> None:
    cfg = SlackConfig.model_validate({**SLACK, "allow_users": ["U024BE7LH", "ann"]})
    assert cfg.allows("U024BE7LH", "someone") and cfg.allows("U999", "ann")
    assert not cfg.allows("U999", "eve")
    assert SlackConfig.model_validate(SLACK).allows("U999", "eve")  # no list: the channel decides


def test_the_twilio_webhook_url_is_optional_but_must_be_a_url() -> None:
    assert SmsConfig.model_validate({**SMS, "webhook_url": ""}).webhook_url is None
    with pytest.raises(ValidationError, match="is not a URL; write the one set in Twilio"):
        SmsConfig.model_validate({**SMS, "webhook_url": "alerts.example.com/hooks"})
