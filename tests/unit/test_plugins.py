"""Plugins are imported when a config names them, and only then (issue 14).

The registries (`daemon.plugins.PluginRegistry`) find channel and source types among the
built-ins and the `tickwatch.notifiers` / `tickwatch.sources` entry points. Import checks run in a
fresh interpreter: this test process has long since imported everything. Entry points come from a
real distribution (a `*.dist-info` with `entry_points.txt`) put on sys.path: no mocks.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.notify.registry import NOTIFIERS
from daemon.sources.registry import SOURCES, source_class
from tests.helpers import install_distribution

REPO = Path(__file__).resolve().parents[2]

#: Modules of the built-in plugins, and the libraries only they need.
PLUGIN_MODULES = {
    "daemon.notify.slack", "daemon.notify.sms", "daemon.notify.webhook", "daemon.notify.apprise",
    "daemon.sources.alpaca", "daemon.sources.polygon", "daemon.sources.finnhub",
    "daemon.sources.alphavantage", "daemon.sources.synthetic", "daemon.sources.alpaca_rest",
}  # fmt: skip
PLUGIN_LIBRARIES = ("slack_sdk", "twilio", "apprise", "websockets", "aiohttp")


def loaded_after_loading(config: str, tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter holds after `load_config` of this alerts.yaml."""
    (tmp_path / "alerts.yaml").write_text(textwrap.dedent(config))
    code = (
        "import sys\nfrom daemon.config import load_config\n"
        f"load_config({str(tmp_path / 'alerts.yaml')!r}, env={{'SLACK_BOT_TOKEN': 'xoxb-1-2'}})\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


RULE = """
rules:
  - {name: nvda_above, when: {threshold: {symbols: NVDA, above: 200}}, channels: [desk]}
"""


def test_a_console_only_config_imports_no_channel_or_feed_plugin(tmp_path: Path) -> None:
    loaded = loaded_after_loading("channels:\n  desk: {type: console}\n" + RULE, tmp_path)
    assert "daemon.notify.console" in loaded  # the output is what we think it is
    assert not PLUGIN_MODULES & loaded
    assert not {m for m in loaded if m.split(".")[0] in PLUGIN_LIBRARIES}
    # nor what running a source or delivering needs: parsing is only parsing
    assert not {"redis", "apscheduler"} & {m.split(".")[0] for m in loaded}


def test_a_slack_config_imports_slack_and_nothing_else(tmp_path: Path) -> None:
    config = """\
    channels:
      desk: {type: slack, token: "${SLACK_BOT_TOKEN}", channel: "#desk"}
    """
    loaded = loaded_after_loading(textwrap.dedent(config) + RULE, tmp_path)
    assert {"daemon.notify.slack", "slack_sdk"} <= loaded
    assert not (PLUGIN_MODULES - {"daemon.notify.slack"}) & loaded
    assert not {"twilio", "apprise", "websockets"} & {m.split(".")[0] for m in loaded}


def problems_of(config: str, tmp_path: Path) -> str:
    (tmp_path / "alerts.yaml").write_text(textwrap.dedent(config))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "alerts.yaml")
    return str(err.value)


def test_an_unknown_type_is_refused_with_every_type_allowed(tmp_path: Path) -> None:
    text = problems_of("channels:\n  desk: {type: slakc}\n  log: {type: console}\n", tmp_path)
    assert "alerts.yaml:2: channels.desk: type 'slakc' is not one of" in text
    for kind in NOTIFIERS.builtin_paths:
        assert repr(kind) in text
    text = problems_of("sources:\n  - {type: replay, name: r, ticks: x.csv}\n  - {name: s}\n",
                       tmp_path)  # fmt: skip
    assert "alerts.yaml:3: sources[1]: missing required field 'type'" in text


SOURCE_PLUGIN = """
from typing import ClassVar, Literal
from daemon.sources.base import Source
from daemon.sources.source_config import SourceConfig


class CounterConfig(SourceConfig):
    type: Literal["tw_counter"]
    count: int = 3


class CounterSource(Source):
    kind: ClassVar[str] = "tw_counter"
    config_model: ClassVar[type[SourceConfig]] = CounterConfig

    async def run(self) -> None:
        return None
"""


@pytest.fixture
def source_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installs (by sys.path) a distribution declaring a good and a broken source plugin."""
    install_distribution(
        tmp_path,
        monkeypatch,
        "tw-test-sources",
        {
            "tw_test_counter": SOURCE_PLUGIN,
            "tw_test_nofeed": "raise ImportError('needs libfeed 3')",
        },
        "[tickwatch.sources]\n"
        "tw_counter = tw_test_counter:CounterSource\n"
        "tw_nofeed = tw_test_nofeed:NoFeed\n",
    )
    SOURCES.forget()
    yield tmp_path
    SOURCES.forget()
    for name in ("tw_test_counter", "tw_test_nofeed"):
        sys.modules.pop(name, None)


def test_a_source_from_an_entry_point_is_parsed_by_its_own_model(source_plugin: Path) -> None:
    assert "tw_counter" in SOURCES.names()
    (source_plugin / "alerts.yaml").write_text(
        "sources:\n  - {type: tw_counter, name: counts, count: 7}\n"
        "  - {type: replay, name: tape, ticks: tape.csv}\n"
    )
    cfg = load_config(source_plugin / "alerts.yaml")
    counter, replay = cfg.settings.sources
    assert type(counter).__name__ == "CounterConfig"
    assert counter.count == 7  # type: ignore[attr-defined]
    assert source_class("tw_counter").__module__ == "tw_test_counter"
    assert type(replay).__name__ == "ReplayConfig"
    # Its own model words its errors:
    bad = "sources:\n  - {type: tw_counter, name: c, cnt: 1}\n"
    (source_plugin / "alerts.yaml").write_text(bad)
    with pytest.raises(ConfigError, match=r"unknown field 'cnt' \(did you mean 'count'\?\)"):
        load_config(source_plugin / "alerts.yaml")


def test_a_config_naming_a_broken_plugin_says_why_it_is_unknown(
    source_plugin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="daemon.sources.registry")
    text = problems_of("sources:\n  - {type: tw_nofeed, name: feed}\n", source_plugin)
    assert "sources[0]: type 'tw_nofeed' is not one of" in text
    assert "'tw_counter'" in text and "'replay'" in text  # the sound plugin is offered
    assert (
        "source plugin 'tw_nofeed' (tw_test_nofeed:NoFeed) skipped: it failed to load: "
        "ImportError: needs libfeed 3"
    ) in caplog.text
    assert caplog.text.count("skipped") == 1  # said once, though asked for twice
