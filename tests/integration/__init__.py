"""Tests against the suite's real Redis, loopback fakes (Slack/Twilio/feeds/REST) or the CLI."""
