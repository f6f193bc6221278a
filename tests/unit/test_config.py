"""alerts.yaml + rules/*.yaml: every problem located as `file:line: path: message`, with a fix."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from daemon.config import Config, ConfigError, load_config
from daemon.notify.slack import SlackConfig
from daemon.yamlsrc import MAX_FILE_BYTES, expand_env

REPO = Path(__file__).resolve().parents[2]

ALERTS = """\
groups:
  mag7: [AAPL, MSFT, NVDA]
  rotation: [XMAG, MAGS]
channels:
  console:
    type: console
  slack_desk:
    type: slack
    token: ${SLACK_BOT_TOKEN:-}
    channel: "#desk"
include:
  - rules/*.yaml
"""

GOOD_RULE = """\
  - name: {name}
    when:
      threshold: {{symbols: NVDA, above: 100}}
    channels: [console]
"""


def rules_file(*names: str) -> str:
    return "rules:\n" + "".join(GOOD_RULE.format(name=n) for n in names)


def make_tree(root: Path, rules: dict[str, str], alerts: str = ALERTS) -> Path:
    (root / "rules").mkdir(exist_ok=True)
    (root / "alerts.yaml").write_text(alerts)
    for name, text in rules.items():
        (root / "rules" / name).write_text(text)
    return root / "alerts.yaml"


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the `nth` line containing `needle` (how a person finds it in an editor)."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    assert len(hits) > nth, f"{needle!r} not in text"
    return hits[nth]


def load_err(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env or {})
    return exc.value


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # file names in messages are relative to the working directory
    monkeypatch.chdir(tmp_path)


# --- (a) the shipped configuration ---------------------------------------------------------


def test_shipped_config_loads() -> None:
    cfg = load_config(REPO / "alerts.yaml", env={})
    mag7 = {"AAPL", "MSFT", "GOOGL", "AMZN", "META", "NVDA", "TSLA"}
    assert cfg.universe == frozenset(mag7 | {"XMAG", "MAGS"})
    assert len(cfg.universe) == 9
    shipped_rules = [
        r["name"]
        for f in sorted((REPO / "rules").glob("*.yaml"))
        for r in yaml.safe_load(f.read_text())["rules"]
    ]
    assert sorted(lr.rule.name for lr in cfg.rules) == sorted(shipped_rules)
    assert set(cfg.expand("mag7")) == mag7


def test_minimal_tree_loads(tmp_path: Path) -> None:
    cfg = load_config(make_tree(tmp_path, {"x.yaml": rules_file("a", "b")}), env={})
    assert [lr.rule.name for lr in cfg.rules] == ["a", "b"]
    assert [lr.file for lr in cfg.rules] == ["rules/x.yaml"] * 2
    text = rules_file("a", "b")
    assert [lr.line for lr in cfg.rules] == [line_of(text, "- name: a"), line_of(text, "- name: b")]
    assert cfg.expand(["mag7", "NVDA", "XMAG"]) == ["AAPL", "MSFT", "NVDA", "XMAG"]


# --- (b) durations -------------------------------------------------------------------------


def test_bad_duration_is_located(tmp_path: Path) -> None:
    text = rules_file("a", "b").replace(
        "    channels: [console]\n  - name: b",
        "    channels: [console]\n  - name: b\n    for: 5 minutes",
    )
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    line = line_of(text, "for: 5 minutes")
    assert f"rules/x.yaml:{line}: rules[1].for: '5 minutes' is not a duration; write 5m" in str(err)
    assert len(err.problems) == 1
    assert str(err).endswith("1 problem found")


# --- (c) typos in field names --------------------------------------------------------------


def test_unknown_field_typo_with_did_you_mean(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      thresold: {symbols: NVDA, above: 100}
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    msg = str(err)
    assert f"rules/x.yaml:{line_of(text, 'thresold')}: rules[0].when.thresold:" in msg
    assert "unknown field 'thresold'" in msg
    assert "did you mean 'threshold'?" in msg


def test_unknown_field_inside_condition_lists_allowed(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      threshold:
        symbols: NVDA
        abvoe: 100
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    (p,) = err.problems
    assert (p.file, p.line) == ("rules/x.yaml", line_of(text, "abvoe"))
    assert "unknown field 'abvoe' (did you mean 'above'?)" in p.message
    assert "allowed here: above, below, clear, price, symbols" in p.message


# --- (d) unknown channel, unknown group ----------------------------------------------------


def test_unknown_channel_and_group(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      threshold: {symbols: NVDA, above: 100}
    channels:
      - console
      - slak_desk
  - name: b
    when:
      threshold:
        symbols: mgs7
        above: 100
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    msg = str(err)
    assert (
        f"rules/x.yaml:{line_of(text, 'slak_desk')}: rules[0].channels[1]: "
        "unknown channel 'slak_desk' (did you mean 'slack_desk'?); "
        "channels in alerts.yaml: console, slack_desk"
    ) in msg
    assert (
        f"rules/x.yaml:{line_of(text, 'mgs7')}: rules[1].when.threshold.symbols: "
        "unknown group 'mgs7' (did you mean 'mag7'?); groups in alerts.yaml: mag7, rotation"
    ) in msg
    assert len(err.problems) == 2


def test_group_in_a_list_and_group_where_one_symbol_is_needed(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      threshold:
        symbols: [NVDA, rotaton]
        above: 100
    channels: [console]
  - name: b
    when:
      spread:
        a: XMAG
        b: mag7
        below: 3
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    by_path = {p.path: p for p in err.problems}
    p = by_path["rules[0].when.threshold.symbols[1]"]
    assert p.line == line_of(text, "rotaton")
    assert "did you mean 'rotation'?" in p.message
    p = by_path["rules[1].when.spread.b"]
    assert p.line == line_of(text, "b: mag7")
    assert "'mag7' is a group; this field takes one symbol" in p.message


# --- (e) every problem of every file at once -----------------------------------------------


def test_all_problems_in_all_files_reported_together(tmp_path: Path) -> None:
    x = rules_file("a").replace(
        "    channels: [console]", "    for: 5 minutes\n    channels: [console]"
    )
    y = """\
rules:
  - name: b
    when:
      threshold: {symbols: NVDA, above: 100}
    channels: [consol]
  - name: c
    when:
      threshold: {symbols: mag8, above: 100}
    channels: [console]
"""
    z = "rules:\n  - name: d\n    when: [unclosed\n"
    w = rules_file("e").replace("above: 100", "above: 100, clear: 200")
    err = load_err(make_tree(tmp_path, {"x.yaml": x, "y.yaml": y, "z.yaml": z, "w.yaml": w}))
    files = sorted({p.file for p in err.problems})
    assert files == ["rules/w.yaml", "rules/x.yaml", "rules/y.yaml", "rules/z.yaml"]
    assert len(err.problems) == 5
    assert str(err).endswith("\n5 problems found")
    messages = str(err).splitlines()
    assert sum(m.startswith("rules/y.yaml:") for m in messages) == 2
    assert any("'5 minutes' is not a duration" in m for m in messages)
    assert any("YAML syntax error" in m for m in messages)
    assert any("clear 200.0 must be at or below the 'above' level 100.0" in m for m in messages)


# --- (f) environment variables -------------------------------------------------------------


def test_env_expansion(tmp_path: Path) -> None:
    alerts = ALERTS.replace('channel: "#desk"', 'channel: "${DESK}"').replace(
        "mag7: [AAPL, MSFT, NVDA]", "mag7: [AAPL, MSFT, NVDA]\n  extra: ['${EXTRA_SYM:-AMD}']"
    )
    rules = rules_file("a").replace(
        "    channels:", '    description: "costs $$5 and ${UNSET_DESC:-nothing}"\n    channels:'
    )
    path = make_tree(tmp_path, {"x.yaml": rules}, alerts)
    cfg = load_config(path, env={"DESK": "#rotation-desk", "SLACK_BOT_TOKEN": "xoxb-1"})
    assert cfg.dump()["channels"]["slack_desk"]["channel"] == "#rotation-desk"
    assert cfg.settings.groups["extra"] == ["AMD"]
    assert cfg.rules[0].rule.description == "costs $5 and nothing"
    # set wins over the default; set-but-empty falls back to it (shell `:-` semantics)
    cfg = load_config(path, env={"DESK": "#d", "EXTRA_SYM": "INTC"})
    assert cfg.settings.groups["extra"] == ["INTC"]
    cfg = load_config(path, env={"DESK": "#d", "EXTRA_SYM": ""})
    assert cfg.settings.groups["extra"] == ["AMD"]


def test_missing_env_var_is_located(tmp_path: Path) -> None:
    alerts = ALERTS.replace('channel: "#desk"', "channel: ${DESK_CHANNEL}")
    err = load_err(make_tree(tmp_path, {"x.yaml": rules_file("a")}, alerts))
    (p,) = err.problems
    assert p.file == "alerts.yaml"
    assert p.line == line_of(alerts, "DESK_CHANNEL")
    assert p.path == "channels.slack_desk.channel"
    assert "environment variable DESK_CHANNEL is not set" in p.message
    assert "${DESK_CHANNEL:-default}" in p.message


def test_missing_env_var_in_rule_file(tmp_path: Path) -> None:
    rules = rules_file("a").replace("    channels:", "    description: ${WHY}\n    channels:")
    err = load_err(make_tree(tmp_path, {"x.yaml": rules}))
    (p,) = err.problems
    assert (p.file, p.line) == ("rules/x.yaml", line_of(rules, "${WHY}"))
    assert "WHY is not set" in p.message


def test_expand_env_unit() -> None:
    env = {"A": "1", "E": ""}
    assert expand_env("${A}-${B:-2}-$$-${E:-3}-${E}", env) == ("1-2-$-3-", [])
    assert expand_env("x${MISSING}y${A}", env) == ("xy1", ["MISSING"])
    assert expand_env("$$${A}", env) == ("$1", [])
    assert expand_env("$HOME ${ not a var}", env) == ("$HOME ${ not a var}", [])


# --- (g) secrets ---------------------------------------------------------------------------


def test_dump_hides_secrets(tmp_path: Path) -> None:
    token = "xoxb-1234-abcdefSECRET"
    password = "hunter2pw"
    alerts = "redis:\n  url: ${REDIS_URL}\n" + ALERTS
    path = make_tree(tmp_path, {"x.yaml": rules_file("a")}, alerts)
    cfg = load_config(
        path, env={"SLACK_BOT_TOKEN": token, "REDIS_URL": f"redis://app:{password}@db:6379/2"}
    )
    slack = cfg.channel("slack_desk")
    assert isinstance(slack, SlackConfig)
    assert slack.token.get_secret_value() == token
    dump = cfg.dump()
    assert token not in str(dump)
    assert password not in str(dump)
    assert dump["channels"]["slack_desk"]["token"] != token
    assert dump["redis"]["url"] == "redis://***@db:6379/2"
    assert dump["rules"] == ["a"]


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://:p@ss@db:6379/0", "ss"),  # unencoded '@': redis-py takes the last one
        ("unix:///tmp/redis.sock?db=0&password=s3cr3t", "s3cr3t"),  # redis-py's unix form
    ],
)
def test_dump_masks_every_redis_password_form(tmp_path: Path, url: str, secret: str) -> None:
    alerts = "redis:\n  url: ${REDIS_URL}\n" + ALERTS
    cfg = load_config(
        make_tree(tmp_path, {"x.yaml": rules_file("a")}, alerts), env={"REDIS_URL": url}
    )
    masked = cfg.dump()["redis"]["url"]
    assert secret not in masked
    assert "***" in masked


# --- (h) YAML syntax -----------------------------------------------------------------------


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    text = rules_file("a", "b").replace("    channels: [console]", "    channels: [console]]", 1)
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    (p,) = err.problems
    assert p.file == "rules/x.yaml"
    assert p.line == line_of(text, "[console]]")
    assert str(p).startswith(f"rules/x.yaml:{p.line}: YAML syntax error:")


def test_yaml_syntax_error_in_alerts_yaml(tmp_path: Path) -> None:
    alerts = ALERTS.replace("  console:\n", "  console:\n   type console\n  :\n", 1)
    err = load_err(make_tree(tmp_path, {}, alerts))
    assert re.match(r"alerts\.yaml:\d+: YAML syntax error", str(err))
    assert err.problems[0].line >= line_of(alerts, "console:")


# --- (i) hostile files ---------------------------------------------------------------------


def test_alias_bomb_refused_quickly(tmp_path: Path) -> None:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    lines.append("rules: []")
    text = "\n".join(lines) + "\n"
    path = make_tree(tmp_path, {"bomb.yaml": text})
    start = time.perf_counter()
    err = load_err(path)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"alias bomb took {elapsed:.1f}s"
    (p,) = err.problems
    assert p.file == "rules/bomb.yaml"
    assert "refused" in p.message and "aliases" in p.message


def test_oversized_file_refused_with_size(tmp_path: Path) -> None:
    text = "rules: []\n" + ("# padding " + "x" * 89 + "\n") * 22_000
    size = len(text.encode())
    assert size > MAX_FILE_BYTES
    err = load_err(make_tree(tmp_path, {"big.yaml": text}))
    (p,) = err.problems
    assert p.file == "rules/big.yaml"
    assert f"file is {size / 1e6:.1f} MB" in p.message
    assert "limit is 2 MB" in p.message


# --- (j) rule names ------------------------------------------------------------------------


def test_duplicate_rule_name_across_files(tmp_path: Path) -> None:
    a = rules_file("first", "shared")
    b = rules_file("other", "shared")
    err = load_err(make_tree(tmp_path, {"a.yaml": a, "b.yaml": b}))
    (p,) = err.problems
    first = line_of(a, "- name: shared")
    assert (p.file, p.line, p.path) == (
        "rules/b.yaml",
        line_of(b, "- name: shared"),
        "rules[1].name",
    )
    assert f"rule name 'shared' is already used at rules/a.yaml:{first}" in p.message


def test_problem_on_first_of_two_same_named_rules_is_located_on_it(tmp_path: Path) -> None:
    text = rules_file("a", "a").replace("channels: [console]", "channels: [consle]", 1)
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    by_path = {p.path: p for p in err.problems}
    assert by_path["rules[0].channels[0]"].line == line_of(text, "[consle]")
    assert by_path["rules[1].name"].line == line_of(text, "- name: a", 1)
    assert len(err.problems) == 2


def test_duplicate_names_on_one_line_are_caught(tmp_path: Path) -> None:
    rule = "{name: a, when: {threshold: {symbols: NVDA, above: 1}}, channels: [console]}"
    err = load_err(make_tree(tmp_path, {"x.yaml": f"rules: [{rule}, {rule}]\n"}))
    (p,) = err.problems
    assert p.path == "rules[1].name" and "already used" in p.message


def test_file_matched_by_two_include_patterns_is_loaded_once(tmp_path: Path) -> None:
    alerts = ALERTS + "  - rules/x.yaml\n"
    cfg = load_config(make_tree(tmp_path, {"x.yaml": rules_file("a")}, alerts), env={})
    assert [lr.rule.name for lr in cfg.rules] == ["a"]


def test_include_that_matches_nothing(tmp_path: Path) -> None:
    alerts = ALERTS + "  - more/*.yaml\n"
    err = load_err(make_tree(tmp_path, {"x.yaml": rules_file("a")}, alerts))
    (p,) = err.problems
    assert (p.file, p.line) == ("alerts.yaml", line_of(alerts, "more/*.yaml"))
    assert "no file matches 'more/*.yaml'" in p.message


# --- (k) condition shape -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "needle", "message"),
    [
        (
            "threshold: {symbols: NVDA, above: 100, clear: 105}",
            "clear: 105",
            "clear 105.0 must be at or below the 'above' level 100.0",
        ),
        (
            "threshold: {symbols: NVDA, below: 100, clear: 95}",
            "clear: 95",
            "clear 95.0 must be at or above the 'below' level 100.0",
        ),
        (
            "spread: {a: XMAG, b: MAGS, as: return, below: 8}",
            "as: return",
            "'as: return' needs 'since': write since: ytd",
        ),
        (
            "spread: {a: XMAG, b: MAGS, since: ytd, below: 8}",
            "since: ytd",
            "'since' only applies to 'as: return'",
        ),
        (
            "threshold: {symbols: NVDA, above: 1, below: 2}",
            "above: 1",
            "give exactly one of 'above' or 'below'",
        ),
        (
            "pct_move: {symbols: NVDA, window: 30m, up: 3, down: 3}",
            "pct_move",
            "give exactly one of 'up', 'down' or 'either'",
        ),
    ],
)
def test_condition_shape_errors(tmp_path: Path, cond: str, needle: str, message: str) -> None:
    text = f"rules:\n  - name: a\n    when:\n      {cond}\n    channels: [console]\n"
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    (p,) = err.problems
    assert p.line == line_of(text, needle)
    assert message in p.message


def test_two_conditions_in_one_when(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      threshold: {symbols: NVDA, above: 100}
      pct_move: {symbols: NVDA, window: 5m, up: 3}
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    (p,) = err.problems
    assert (p.line, p.path) == (line_of(text, "when:"), "rules[0].when")
    assert "one condition per `when`, found threshold, pct_move" in p.message
    assert "combine them with all: [...] or any: [...]" in p.message


def test_headline_rule_with_for_refused(tmp_path: Path) -> None:
    text = """\
rules:
  - name: a
    when:
      headline: {symbols: mag7, any_of: [capex]}
    for: 5m
    channels: [console]
"""
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    assert "headline rules fire on a single tick or headline; remove 'for'" in str(err)


# --- (l) message templates -----------------------------------------------------------------


def _template_err(tmp_path: Path, template: str) -> tuple[str, int]:
    text = rules_file("a").replace("    channels:", f"    message: '{template}'\n    channels:")
    err = load_err(make_tree(tmp_path, {"x.yaml": text}))
    (p,) = err.problems
    assert p.path == "rules[0].message"
    assert p.line == line_of(text, "message:")
    return p.message, p.line


def test_template_unknown_placeholder_lists_names(tmp_path: Path) -> None:
    msg, _ = _template_err(tmp_path, "{symbol} at {valu:.2f}")
    assert msg.startswith("unknown placeholder {valu}; available: ")
    available = msg.split("available: ")[1].split(", ")
    assert {"value", "symbol", "price", "threshold", "rule"} <= set(available)
    assert available == sorted(available)


@pytest.mark.parametrize("template", ["{value.__class__}", "{value[0]}", "{0}", "{}"])
def test_template_attribute_and_index_access_refused(tmp_path: Path, template: str) -> None:
    msg, _ = _template_err(tmp_path, template)
    assert "is not allowed" in msg
    assert "no positions, attributes or indexes" in msg


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("{value:zz}", "{value:zz}"),
        ("{symbol:.2f}", "{symbol:.2f}"),  # a string formatted as a number
        ("{value!r}", "conversion !r is not allowed"),
        ("{value:{threshold}}", "nested placeholder"),
        ("{value", "bad template"),
    ],
)
def test_template_bad_format_refused(tmp_path: Path, template: str, needle: str) -> None:
    msg, _ = _template_err(tmp_path, template)
    assert needle in msg


def test_template_placeholders_depend_on_the_condition(tmp_path: Path) -> None:
    # {a_value} belongs to spread rules: fine there, unknown in a threshold rule
    spread = """\
rules:
  - name: s
    when:
      spread: {a: XMAG, b: MAGS, below: 3}
    message: "{a_value:.2f} vs {b_value:.2f}"
    channels: [console]
"""
    cfg = load_config(make_tree(tmp_path, {"x.yaml": spread}), env={})
    assert isinstance(cfg, Config)
    msg, _ = _template_err(tmp_path, "{a_value:.2f}")
    assert "unknown placeholder {a_value}" in msg


def test_rule_files_are_checked_even_when_alerts_yaml_is_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bad_rule = rules_file("r1").replace(
        "    channels: [console]", "    for: soon\n    channels: [console]"
    )
    alerts = ALERTS.replace("groups:", "grups: {}\ngroups:")
    path = make_tree(tmp_path, {"x.yaml": bad_rule}, alerts)
    err = load_err(path)
    text = str(err)
    assert f"alerts.yaml:{line_of(alerts, 'grups')}: grups: unknown field 'grups'" in text
    assert f"rules/x.yaml:{line_of(bad_rule, 'for: soon')}: rules[0].for:" in text
    assert len(err.problems) == 2
