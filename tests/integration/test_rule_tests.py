"""`tickwatch test`: rule unit tests run through the daemon's own Engine.

The shipped rule-test files must pass; a wrong expectation must fail with a diff showing both
sides; a broken test file must be refused with file:line; and the series notation must expand
exactly as promtool's does.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.ruletests import Expected, compare, expand_series, main, parse_at, parse_start

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "rules" / "tests").glob("*.yaml"))
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.MULTILINE)


def run(paths: list[Path | str]) -> tuple[int, str]:
    buf = io.StringIO()
    rc = main([str(p) for p in paths], out=buf, env={})
    return rc, buf.getvalue()


def write(tmp_path: Path, body: str, name: str = "t.yaml") -> Path:
    """A test file whose config is the repo's alerts.yaml (absolute: tmp_path is elsewhere).

    Without its own `rule_files`, the market rules are under test (not rules/ops.yaml, whose
    staleness checks would speak up about every symbol a small test does not tick).
    """
    path = tmp_path / name
    if "rule_files:" not in body:
        market = ", ".join(str(REPO / "rules" / f) for f in ("rotation.yaml", "headlines.yaml"))
        body = f"{body.rstrip()}\nrule_files: [{market}]\n"  # last, so line numbers hold
    path.write_text(f"config: {REPO / 'alerts.yaml'}\n{body}")
    return path


@pytest.fixture(autouse=True)
def _at_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # file names in messages are relative to the working directory


SPREAD_FIRES = """\
rule_files: [{repo}/rules/rotation.yaml]
tests:
  - name: spread fires
    start: 2026-04-09T13:00:00-04:00
    anchors: {{XMAG: 25.0, MAGS: 60.0}}
    input_series:
      XMAG: "27.1x4 26.95x29 27.15x5"
      MAGS: "60x40"
    expect:
{expect}
"""


def spread_test(tmp_path: Path, expect: str) -> Path:
    return write(tmp_path, SPREAD_FIRES.format(repo=REPO, expect=expect))


# --- the shipped rule tests -----------------------------------------------------------------


def test_shipped_rule_tests_pass() -> None:
    assert {p.name for p in SHIPPED} >= {"rotation.yaml", "headlines.yaml"}
    rc, out = run(SHIPPED)
    assert rc == 0, out
    assert "FAIL" not in out
    m = SUMMARY.search(out)
    assert m is not None and m.group(2) == "0" and int(m.group(1)) >= 20, out
    assert "PASS rules/tests/rotation.yaml: " in out
    assert "PASS rules/tests/headlines.yaml: " in out


def test_every_shipped_rule_has_a_firing_and_a_quiet_case() -> None:
    """Each rule is named by an expectation, and each test file has `expect: []` cases."""
    import yaml

    cfg = load_config(REPO / "alerts.yaml", env={})
    rule_names = {lr.rule.name for lr in cfg.rules}
    expected_rules: set[str] = set()
    quiet = 0
    for path in SHIPPED:
        data = yaml.safe_load(path.read_text())
        for t in data["tests"]:
            expected_rules |= {e["rule"] for e in t["expect"]}
            quiet += not t["expect"]
    assert rule_names <= expected_rules
    assert quiet >= len(rule_names)


def test_rule_tests_are_not_loaded_as_rule_files() -> None:
    cfg = load_config(REPO / "alerts.yaml", env={})
    assert not [f for f in cfg.files if "tests" in Path(f).parts]


def test_cli_module_runs_the_shipped_tests() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon.ruletests",
            *[str(p.relative_to(REPO)) for p in SHIPPED],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SUMMARY.search(proc.stdout)


# --- failing tests show a diff ------------------------------------------------------------


def test_wrong_expectation_fails_with_a_diff_of_both_sides(tmp_path: Path) -> None:
    path = spread_test(
        tmp_path,
        "      - {at: 17m, rule: xmag-mags-ytd-spread-compresses, state: firing,"
        " value: {approx: 7.9, tol: 0.05}}\n",
    )
    rc, out = run([path])
    assert rc == 1, out
    lines = out.splitlines()
    assert lines[0] == f"FAIL {path}:4: spread fires"
    minus = [ln for ln in lines if ln.lstrip().startswith("- 2026")]
    plus = [ln for ln in lines if ln.lstrip().startswith("+ 2026")]
    assert len(minus) == 1 and len(plus) == 2, out
    # expected side: New York time, offset, value with tolerance, where it was written
    assert "2026-04-09 13:17:00 EDT (+17m)" in minus[0]
    assert "value=7.9±0.05" in minus[0]
    assert minus[0].endswith(f"[{path}:11]")
    # got side: the real firing 15 minutes after the dip began, all labels, the real value
    assert "2026-04-09 13:20:00 EDT (+20m)  firing" in plus[0]
    assert "xmag-mags-ytd-spread-compresses{desk=rotation,pair=XMAG/MAGS}" in plus[0]
    assert "value=7.8 " in plus[0] + " "
    assert "13:35:00 EDT (+35m)  resolved" in plus[1]
    assert lines[-1] == "0 passed, 1 failed"


def test_expected_but_nothing_fired(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tests:
  - name: quiet market
    start: 2026-04-09T13:00:00-04:00
    input_series: {NVDA: "185x40"}
    expect:
      - {at: 36m, rule: mag7-sharp-move, state: firing, labels: {symbol: NVDA}}
""",
    )
    rc, out = run([path])
    assert rc == 1
    assert "    - 2026-04-09 13:36:00 EDT (+36m)  firing    mag7-sharp-move{symbol=NVDA}" in out
    assert "    + " not in out


def test_unexpected_firing_against_expect_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tests:
  - name: quiet, supposedly
    start: 2026-04-09T13:00:00-04:00
    input_series: {NVDA: "185x30 186+1x5"}
    expect: []
""",
    )
    rc, out = run([path])
    assert rc == 1
    assert "    + 2026-04-09 13:36:00 EDT (+36m)  firing    mag7-sharp-move" in out
    assert "(the test expects nothing: expect: [])" in out


def test_summary_and_channels_are_compared(tmp_path: Path) -> None:
    path = spread_test(
        tmp_path,
        """\
      - at: 20m
        rule: xmag-mags-ytd-spread-compresses
        state: firing
        summary: "wrong text"
        channels: [console]
      - {at: 34m, rule: xmag-mags-ytd-spread-compresses, state: resolved}
""",
    )
    rc, out = run([path])
    assert rc == 1
    assert "summary='wrong text'" in out
    assert "summary='XMAG-MAGS YTD spread 7.80 pts is below 8" in out
    assert "channels=console,slack_desk" in out


def test_overnight_gap_guard_is_meaningful(tmp_path: Path) -> None:
    """The same 3% jump without the overnight gap does fire: the shipped guard tests the gap."""
    path = write(
        tmp_path,
        """\
tests:
  - name: 3% within 30 minutes, no gap
    start: 2026-03-31T15:30:00-04:00
    interval: 5m
    input_series: {NVDA: "185x6 191x5"}
    expect:
      - {at: 35m, rule: mag7-sharp-move, state: firing, labels: {symbol: NVDA}}
""",
    )
    rc, out = run([path])
    assert rc == 0, out


# --- invalid test files ---------------------------------------------------------------------


def test_invalid_test_file_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tests:
  - name: typos
    start: 2026-04-09T13:00:00-04:00
    interval: 5 minutes
    input_series:
      XMGA: "27.7 27.7x30"
      MAGS: "60 60+0.05y30"
    expect:
      - {at: 17m, rule: xmag-spread, state: firing}
""",
    )
    rc, out = run([path])
    assert rc == 2
    assert f"{path}:5: tests[0].interval: '5 minutes' is not a duration; write 5m" in out
    assert f"{path}:8: tests[0].input_series.MAGS: value 2 '60+0.05y30' is not series" in out
    assert "FAIL" not in out and "PASS" not in out
    assert "0 passed, 0 failed" in out.splitlines()
    assert out.splitlines()[-1] == "1 test file invalid: fix the problems above"


def test_unknown_rule_and_symbol_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tests:
  - name: typos
    start: 2026-04-09T13:00:00-04:00
    input_series:
      XMGA: "27.7 27.7x30"
    headlines:
      - {at: 1m, title: "Microsoft raises capex guidance", symbols: [MFST], sentiment: 0.4}
    expect:
      - {at: 17m, rule: xmag-mags-ytd-spread-compress, state: firing}
      - {at: 1m, rule: mag7-sharp-move, state: fired}
""",
    )
    rc, out = run([path])
    assert rc == 2
    assert f"{path}:11: tests[0].expect[1].state: 'fired' is not allowed" in out
    # shape errors come first; fix them and the cross-checks against the config run
    path.write_text(path.read_text().replace("state: fired}", "state: firing}"))
    rc, out = run([path])
    assert rc == 2
    assert (
        f"{path}:6: tests[0].input_series.XMGA: unknown symbol 'XMGA' (did you mean 'XMAG'?)" in out
    )
    assert f"{path}:8: tests[0].headlines[0].symbols[0]: unknown symbol 'MFST'" in out
    assert (
        f"{path}:10: tests[0].expect[0].rule: unknown rule 'xmag-mags-ytd-spread-compress' "
        "(did you mean 'xmag-mags-ytd-spread-compresses'?)" in out
    )
    assert f"{path}:11: tests[0].expect[1].at: expectations must be in time order" in out


def test_rule_left_out_by_rule_files(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""\
rule_files: [{REPO}/rules/headlines.yaml]
tests:
  - name: x
    start: 2026-04-09T13:00:00Z
    expect:
      - {{at: 0, rule: mag7-sharp-move, state: firing}}
""",
    )
    rc, out = run([path])
    assert rc == 2
    assert "rule 'mag7-sharp-move' is in rules/rotation.yaml, which rule_files leaves out" in out


def test_naive_start_and_anchor_without_a_return_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tests:
  - name: x
    start: 2026-01-15 09:30:00
    anchors: {NVDA: 185}
    expect: []
""",
    )
    rc, out = run([path])
    assert rc == 2
    assert "2026-01-15T09:30:00-05:00 for New York time" in out  # January: EST
    path.write_text(path.read_text().replace("2026-01-15 09:30:00", "2026-01-15T09:30:00Z"))
    rc, out = run([path])
    assert rc == 2
    assert f"{path}:5: tests[0].anchors.NVDA: no rule under test measures a return" in out


def test_broken_config_shows_the_configs_own_problems(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(
        "groups: {rotation: [XMAG, MAGS]}\nchannels: {console: {type: console}}\n"
        "include: [rules/*.yaml]\n"
    )
    (tmp_path / "rules" / "r.yaml").write_text(
        "rules:\n  - name: r\n    when: {threshold: {symbols: XMAG, above: 30}}\n"
        "    channels: [consol]\n"
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    body = (
        "config: ../alerts.yaml\ntests:\n  - {name: x, start: 2026-04-09T13:00:00Z, expect: []}\n"
    )
    (tests / "a.yaml").write_text(body)
    (tests / "b.yaml").write_text(body)
    rc, out = run([tests])  # a directory: every *.yaml in it
    assert rc == 2
    lines = out.splitlines()
    assert lines[0] == f"{tests / 'a.yaml'}:1: config: the config ../alerts.yaml is invalid:"
    assert re.match(
        r".*rules/r\.yaml:4: rules\[0\]\.channels\[0\]: unknown channel 'consol'", lines[1]
    )
    # the second file using the same config refers back instead of repeating the problems
    assert (
        f"{tests / 'b.yaml'}:1: config: the config ../alerts.yaml is invalid (its problems" in out
    )
    assert out.count("unknown channel") == 1
    assert lines[-1] == "2 test files invalid: fix the problems above"


def test_valid_files_still_run_next_to_an_invalid_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: [\n")
    rc, out = run([bad, REPO / "rules" / "tests" / "headlines.yaml"])
    assert rc == 2
    assert f"{bad}:2: YAML syntax error" in out
    assert "PASS rules/tests/headlines.yaml: " in out


def test_no_paths() -> None:
    rc, out = run([])
    assert rc == 2 and "no test files" in out


def test_default_output_is_stdout_at_call_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(REPO / "rules" / "tests" / "headlines.yaml")], env={}) == 0
    assert SUMMARY.search(capsys.readouterr().out)


# --- pure pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("1", [1.0]),
        ("1 2 3", [1.0, 2.0, 3.0]),
        ("1+2x3", [1.0, 3.0, 5.0, 7.0]),  # a, then N more steps of b
        ("7-2x3", [7.0, 5.0, 3.0, 1.0]),
        ("5x2", [5.0, 5.0, 5.0]),  # a, N+1 times
        ("1 _x3 2", [1.0, None, None, None, 2.0]),  # _xN: N missing ticks
        ("_ 1 _", [None, 1.0, None]),
        (".5 +2", [0.5, 2.0]),
        ("  27.7\t27.7x2\n", [27.7, 27.7, 27.7, 27.7]),
    ],
)
def test_expand_series(text: str, values: list[float | None]) -> None:
    assert expand_series(text) == values


def test_expand_series_steps_are_exact() -> None:
    values = expand_series("60+0.05x30")
    assert len(values) == 31 and values[-1] == 61.5 and values[3] == 60.15


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty series"),
        ("1+2", "has a step but no count"),
        ("1y3", "'1y3' is not series notation"),
        ("1 stale", "no stale marker"),
        ("1-2x4", "prices must be positive"),
        ("0", "prices must be positive"),
        ("1x999999999", "more than"),
    ],
)
def test_expand_series_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_series(text)


def test_parse_at_and_start() -> None:
    assert parse_at("17m") == dt.timedelta(minutes=17)
    assert parse_at(0) == dt.timedelta(0)
    assert parse_at("1h30m") == dt.timedelta(minutes=90)
    at = parse_at("2026-04-09T13:17:00-04:00")
    assert isinstance(at, dt.datetime) and at.utcoffset() == dt.timedelta(hours=-4)
    with pytest.raises(ValueError, match="10s or 10m"):
        parse_at(10)
    with pytest.raises(ValueError, match=re.escape("2026-07-01T10:00:00-04:00")):
        parse_start(dt.datetime(2026, 7, 1, 10))
    with pytest.raises(ValueError, match="is a date"):
        parse_start(dt.date(2026, 7, 1))


def _event(ts: int, rule: str, **labels: str) -> AlertEvent:
    return AlertEvent(rule, rule, "firing", 1, ts, "warning", "", ("console",), labels, 1.0)


def test_compare_same_instant_in_any_order_and_labels_as_a_subset() -> None:
    got = [_event(1, "a", symbol="NVDA"), _event(1, "a", symbol="MSFT"), _event(2, "b")]
    expected = [
        Expected(1, "a", "firing", {"symbol": "MSFT"}),
        Expected(1, "a", "firing", {"symbol": "NVDA"}, value=1.0),
        Expected(2, "b", "firing", {}),
    ]
    assert [d.mark for d in compare(expected, got)] == [" ", " ", " "]


def test_compare_value_tolerance_and_order_of_a_near_miss() -> None:
    got = [_event(1, "a"), _event(5, "a")]
    expected = [
        Expected(1, "a", "firing", {}, value=1.01, tol=0.001),
        Expected(5, "a", "firing", {}),
    ]
    diff = compare(expected, got)
    assert [d.mark for d in diff] == ["-", "+", " "]
    wide = [Expected(1, "a", "firing", {}, value=1.01, tol=0.02), expected[1]]
    assert [d.mark for d in compare(wide, got)] == [" ", " "]
