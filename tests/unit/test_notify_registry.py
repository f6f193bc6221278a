"""Notifier discovery through the `tickwatch.notifiers` entry-point group, with a real
distribution (a `*.dist-info` with `entry_points.txt`) put on sys.path: no mocks."""

from __future__ import annotations

import functools
import logging
import operator
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter

from daemon.notify.notification import Notification
from daemon.notify.registry import (
    BUILTIN_NOTIFIERS,
    ENTRY_POINT_GROUP,
    channel_config_models,
    discover_notifiers,
    notifiers,
)
from daemon.notify.slack import SlackNotifier
from tests.helpers import install_distribution, make_alert

PLUGIN = """
from typing import ClassVar, Literal
from pydantic import SecretStr
from daemon.notify.base import ChannelConfig, Notification, Notifier, Receipt


class PagerConfig(ChannelConfig):
    type: Literal["pager"]
    key: SecretStr
    team: str = "desk"


class PagerNotifier(Notifier):
    kind: ClassVar[str] = "pager"
    config_model: ClassVar[type[ChannelConfig]] = PagerConfig
    sent: ClassVar[list[str]] = []

    async def send(self, n: Notification) -> Receipt | None:
        self.sent.append(n.alert.summary)
        return {"incident": str(len(self.sent))}


class SlackAgainConfig(ChannelConfig):
    type: Literal["slack"]


class SlackAgain(PagerNotifier):
    kind: ClassVar[str] = "slack"
    config_model: ClassVar[type[ChannelConfig]] = SlackAgainConfig


class WrongType(PagerNotifier):
    kind: ClassVar[str] = "wrongtype"


class NotANotifier:
    kind = "stranger"
"""
ENTRY_POINTS = f"""\
[{ENTRY_POINT_GROUP}]
pager = tw_test_pager:PagerNotifier
broken = tw_test_broken:Whatever
clash = tw_test_pager:SlackAgain
stranger = tw_test_pager:NotANotifier
wrongtype = tw_test_pager:WrongType
missing = tw_test_pager:NoSuchClass
slack = daemon.notify.slack:SlackNotifier
"""


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installs (by sys.path) a distribution declaring good and bad notifier plugins."""
    install_distribution(
        tmp_path,
        monkeypatch,
        "tw-test-plugins",
        {"tw_test_pager": PLUGIN, "tw_test_broken": "raise ImportError('needs libpager 2.0')"},
        ENTRY_POINTS,
    )
    yield tmp_path
    for name in ("tw_test_pager", "tw_test_broken"):
        sys.modules.pop(name, None)


def test_builtins_are_found_and_registered_as_entry_points_too() -> None:
    found = notifiers()
    assert set(BUILTIN_NOTIFIERS) <= set(found)
    assert list(found)[:5] == ["console", "slack", "sms", "webhook", "apprise"]
    # A stale install without entry points still has every built-in:
    assert set(discover_notifiers()) >= {"console", "slack", "sms", "webhook", "apprise"}


def test_plugins_are_discovered_and_bad_ones_skipped_with_a_reason(
    plugin_dist: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="daemon.notify.registry")
    found = discover_notifiers()
    assert found["pager"].__module__ == "tw_test_pager"
    assert found["slack"] is SlackNotifier  # the plugin claiming "slack" was refused
    assert {"broken", "stranger", "wrongtype", "clash", "missing"}.isdisjoint(found)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert (
        "notifier plugin 'broken' (tw_test_broken:Whatever) skipped: it failed to load: "
        "ImportError: needs libpager 2.0"
    ) in messages
    assert (
        "plugin 'clash' (tw_test_pager:SlackAgain) refused: channel type 'slack' is already "
        "taken by a built-in channel"
    ) in messages
    assert "'stranger' (tw_test_pager:NotANotifier) skipped: " in messages
    assert "is not a subclass of daemon.notify.base.Notifier" in messages
    assert (
        "'wrongtype' (tw_test_pager:WrongType) skipped: PagerConfig.type must be declared "
        "as Literal['wrongtype']"
    ) in messages
    assert "'missing' (tw_test_pager:NoSuchClass) skipped: it failed to load: AttributeError" in (
        messages
    )
    assert len(caplog.records) == 5  # the built-in's own entry point is not a clash


async def test_a_discovered_plugin_parses_its_config_and_delivers(plugin_dist: Path) -> None:
    found = discover_notifiers()
    models = [cls.config_model for cls in found.values()]
    union: Any = functools.reduce(operator.or_, models)
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="type")])
    cfg = adapter.validate_python({"type": "pager", "key": "pg-key-123456"})
    assert type(cfg).__name__ == "PagerConfig"
    pager = found["pager"]("oncall", cfg)
    assert pager.disabled_reason() is None
    receipt = await pager.deliver(Notification.single(make_alert(summary="hello"), "oncall"))
    assert receipt == {"incident": "1"}


def test_the_config_union_covers_every_builtin() -> None:
    kinds = {m.model_fields["type"].annotation.__args__[0] for m in channel_config_models()}
    assert kinds >= {"console", "slack", "sms", "webhook", "apprise"}
