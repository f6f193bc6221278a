"""The whole daemon: `tickwatch run` subprocesses, feed->Redis->rules->Slack, chaos tests."""
