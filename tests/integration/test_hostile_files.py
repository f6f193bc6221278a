"""Whatever bytes a rule file or alerts.yaml holds: a located problem, never a crash.

Issue 12 item 4 ("no input stops the daemon") and issue 19 (inputs `check` crashed on): binary
files, UTF-16, control characters, invalid UTF-8, complex keys, python and unknown tags, alias
bombs, files that vanish or are directories. `load_config` returns a `Config` or raises
`ConfigError`: any other exception fails these tests, and so does a problem that only says
tickwatch itself broke (`INTERNAL_ERROR`, the last-resort net in `load_config`).
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from daemon.config import INTERNAL_ERROR, Config, ConfigError, Settings, load_config
from daemon.yamlsrc import load_yaml

REPO = Path(__file__).resolve().parents[2]

ALERTS = """\
channels:
  console: {type: console}
ops_channels: [console]
groups:
  mag: [NVDA, AAPL]
include: [rules/*.yaml]
"""
GOOD_RULES = """\
rules:
  - name: nvda-100
    when: {threshold: {symbols: NVDA, above: 100}}
    for: 5m
    channels: [console]
    message: "NVDA at {value}"
"""
RANDOM_300 = random.Random(20260412).randbytes(300)


def laughs(levels: int = 9) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [{','.join(['*' + names[i - 1]] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def long_laughs() -> bytes:
    """Few values, much text: a 500 kB string repeated 40 times through one alias."""
    return b'a: &a "' + b"x" * 500_000 + b'"\nb: [' + b", ".join([b"*a"] * 40) + b"]\n"


def alias_chain(n: int = 500) -> bytes:
    return "".join(
        f"a{i}: &a{i} [*a{i - 1}]\n" if i else "a0: &a0 [x]\n" for i in range(n)
    ).encode()


#: name → (file bytes, what the problem says, its line; 0: the file as a whole).
NAMED: dict[str, tuple[bytes, str, int]] = {
    "300 random bytes": (RANDOM_300, "is not text (byte 0x", 1),
    "UTF-16 with a BOM": (GOOD_RULES.encode("utf-16"), "is not UTF-8 text (looks like UTF-16", 0),
    "UTF-16 LE without a BOM": (
        GOOD_RULES.encode("utf-16-le"),
        "is not UTF-8 text (looks like UTF-16 LE, without a BOM): save it as UTF-8",
        0,
    ),
    "UTF-16 BE without a BOM": (GOOD_RULES.encode("utf-16-be"), "looks like UTF-16 BE", 0),
    "UTF-32": (GOOD_RULES.encode("utf-32"), "looks like UTF-32", 0),
    "a bell character": (
        b"rules:\n  - name: nvda\x07-100\n",
        "contains a control character U+0007 at line 2 column 15",
        2,
    ),
    "a NUL byte": (b"rules: []\n\x00", "contains a control character U+0000 at line 2 column 1", 2),
    "an escape sequence, raw": (b"rules: []\n# \x1b[2J\n", "control character U+001B", 2),
    "a non-character": ("rules: []\n# \ufffe\n".encode(), "non-character U+FFFE", 2),
    "Latin-1 text": (
        b"rules:\n  - name: caf\xe9\n",
        "is not UTF-8 text (byte 0xE9 at line 2 column 14; saved as Latin-1",
        2,
    ),
    "a truncated UTF-8 sequence": (b"rules: []\n# \xe2\x82", "is not UTF-8 text", 2),
    "a complex key": (b"? [a, b]: 1\n", "a key must be a plain name", 1),
    "a complex key in a rule": (
        b"rules:\n  - ? [a, b]\n    : 1\n",
        "rules[0]: a key must be a plain name, not a list",
        2,
    ),
    "a flow mapping key": (b"{[a]: 1}\n", "a key must be a plain name", 1),
    "!!python/name": (
        b"rules: !!python/name:os.system\n",
        "rules: YAML tag !!python/name:os.system is not supported",
        1,
    ),
    "!!python/object/apply": (
        b"rules: !!python/object/apply:os.system [touch PWNED]\n",
        "YAML tag !!python/object/apply:os.system is not supported",
        1,
    ),
    "!!python/object on a mapping": (
        b"rules:\n  - !!python/object:daemon.config.Config {a: 1}\n",
        "YAML tag !!python/object:daemon.config.Config is not supported",
        2,
    ),
    "a tag on a key": (b"!!python/name:os.system rules: []\n", "YAML tag", 1),
    "an unknown tag": (b"rules:\n  - !vault secret\n", "YAML tag !vault is not supported", 2),
    "!!binary": (b"rules: !!binary aGVsbG8=\n", "YAML tag !!binary is not supported", 1),
    "!!set": (b"rules: !!set {a, b}\n", "YAML tag !!set is not supported", 1),
    "billion laughs": (laughs(), "refused: the file expands to more than 200000 values", 0),
    "a long string through aliases": (long_laughs(), "refused: the file expands to more than", 0),
    "a self-referencing alias": (b"rules: &a [*a]\n", "refers to a value that contains it", 1),
    "a self-referencing mapping": (b"&a {rules: *a}\n", "refers to a value that contains it", 1),
    "a long alias chain": (alias_chain(), "a63: nested more than 64 levels deep", 64),
    "not a date": (
        b"rules:\n  - name: x\n    expires: 2026-13-45\n",
        "'2026-13-45' is not a date (month must be in 1..12); quote it if it is text",
        3,
    ),
    "!!int on a word": (b"rules: !!int abc\n", "'abc' is not a number; remove the tag", 1),
    "a 5000-digit number": (
        b"rules: [" + b"9" * 5000 + b"]\n",
        "is not a number (5000 digits is too many)",
        1,
    ),
    "two documents": (b"rules: []\n---\nrules: []\n", "remove this `---` or split the file", 2),
    "deep nesting": (b"[" * 5000 + b"]" * 5000, "YAML syntax error", 1),
}


#: What must never reach a terminal raw from a file: C0/C1 controls, bidi overrides, separators.
RAW_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_outcome(root: Path) -> Config | ConfigError:
    """`load_config` on `root`: a Config (that compiles) or a ConfigError with real problems."""
    try:
        cfg = load_config(root / "alerts.yaml", env={})
    except ConfigError as e:
        assert e.problems, "a ConfigError with no problem in it"
        for p in e.problems:
            text = str(p)
            assert INTERNAL_ERROR not in p.message, text
            assert not RAW_CONTROL.search(text), f"unescaped control character in {text!r}"
        return e
    # what a reload and `tickwatch check` do next with it
    cfg.compile()
    assert isinstance(cfg.universe, frozenset)
    return cfg


@dataclass
class Trees:
    """Two config trees: `rule` takes the file under test as rules/zz.yaml, `alerts` as
    alerts.yaml. Each example overwrites the file (a tmp dir per example would be slower)."""

    rule: Path
    alerts: Path

    def as_rule_file(self, data: bytes) -> Config | ConfigError:
        (self.rule / "rules" / "zz.yaml").write_bytes(data)
        return check_outcome(self.rule)

    def as_alerts_yaml(self, data: bytes) -> Config | ConfigError:
        (self.alerts / "alerts.yaml").write_bytes(data)
        return check_outcome(self.alerts)

    def both(self, data: bytes) -> None:
        self.as_rule_file(data)
        self.as_alerts_yaml(data)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Trees:
    rule, alerts = tmp_path_factory.mktemp("as_rule"), tmp_path_factory.mktemp("as_alerts")
    for root in (rule, alerts):
        (root / "rules").mkdir()
        (root / "alerts.yaml").write_text(ALERTS)
        (root / "rules" / "good.yaml").write_text(GOOD_RULES)
    return Trees(rule, alerts)


def only_problem(outcome: Config | ConfigError, file: str) -> Any:
    assert isinstance(outcome, ConfigError), "loaded, but should have been refused"
    mine = [p for p in outcome.problems if p.file.endswith(file)]
    assert mine, outcome
    return mine[0]


# --- the named cases, with what each one says ----------------------------------------------


@pytest.mark.parametrize("case", list(NAMED))
def test_named_input_as_a_rule_file_is_one_located_problem(trees: Trees, case: str) -> None:
    data, says, line = NAMED[case]
    problem = only_problem(trees.as_rule_file(data), "rules/zz.yaml")
    assert says in problem.message or says in str(problem), str(problem)
    assert problem.line == line, str(problem)
    assert str(problem).startswith(problem.file + (f":{line}:" if line else ":"))


@pytest.mark.parametrize("case", list(NAMED))
def test_named_input_as_alerts_yaml_is_one_located_problem(trees: Trees, case: str) -> None:
    data, says, line = NAMED[case]
    problem = only_problem(trees.as_alerts_yaml(data), "alerts.yaml")
    assert says in problem.message or says in str(problem), str(problem)
    assert problem.line == line, str(problem)


def test_python_tags_construct_nothing(trees: Trees, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    for case in ("!!python/object/apply", "!!python/name", "!!python/object on a mapping"):
        trees.both(NAMED[case][0])
    assert not (tmp_path / "PWNED").exists()


def test_a_null_document_is_an_empty_file(trees: Trees) -> None:
    for data in (b"~\n", b"null\n", b"", b"# only a comment\n", b"---\n"):
        assert isinstance(trees.as_rule_file(data), Config), data
    outcome = trees.as_alerts_yaml(b"null\n")  # empty settings: loads, but no rules anywhere
    assert isinstance(outcome, Config) and outcome.rules == []


def test_utf8_bom_just_works(trees: Trees) -> None:
    cfg = trees.as_rule_file(b"\xef\xbb\xbf" + GOOD_RULES.replace("nvda-100", "bom").encode())
    assert isinstance(cfg, Config) and "bom" in [lr.rule.name for lr in cfg.rules]
    cfg = trees.as_alerts_yaml(b"\xef\xbb\xbf" + ALERTS.encode())
    assert isinstance(cfg, Config)
    # and a bad line after a BOM is still the right line and column
    problem = only_problem(trees.as_rule_file(b"\xef\xbb\xbfrules:\n  - x: caf\xe9\n"), "zz.yaml")
    assert "line 2 column 11" in problem.message, problem


def test_escape_sequence_in_a_quoted_key_is_printed_escaped(trees: Trees) -> None:
    """YAML's own escapes make control characters the raw-text check cannot see."""
    problem = only_problem(trees.as_rule_file(b'"\\e[2J\\a": 1\n'), "zz.yaml")
    assert "\x1b" not in str(problem) and "\\x1b[2J\\x07" in str(problem), str(problem)


def test_a_directory_where_a_rule_file_was_expected(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "rules" / "zz.yaml").mkdir()
    problem = only_problem(check_outcome(tree), "rules/zz.yaml")
    assert problem.line == 0 and "is a directory, not a file" in problem.message


def test_a_directory_where_alerts_yaml_was_expected(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").mkdir()
    problem = only_problem(check_outcome(tmp_path), "alerts.yaml")
    assert "is a directory, not a file" in problem.message


def test_a_symlink_loop(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    os.symlink("zz.yaml", tree / "rules" / "zz.yaml")
    problem = only_problem(check_outcome(tree), "zz.yaml")
    assert "cannot read file" in problem.message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_does_not_hang_the_load(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    os.mkfifo(tree / "rules" / "zz.yaml")
    problem = only_problem(check_outcome(tree), "rules/zz.yaml")
    assert "is not a regular file" in problem.message


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads all")
def test_an_unreadable_file(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "rules" / "zz.yaml").write_text(GOOD_RULES)
    (tree / "rules" / "zz.yaml").chmod(0)
    problem = only_problem(check_outcome(tree), "rules/zz.yaml")
    assert "Permission denied" in problem.message


def test_a_file_deleted_between_listing_and_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(tmp_path)
    gone = tree / "rules" / "zz.yaml"
    real_glob = glob.glob

    def listing_then_delete(pattern: str) -> list[str]:
        found = real_glob(pattern)
        gone.unlink(missing_ok=True)  # the editor's rename lands right after the listing
        return found

    gone.write_text(GOOD_RULES.replace("nvda-100", "gone"))
    monkeypatch.setattr("glob.glob", listing_then_delete)
    problem = only_problem(check_outcome(tree), "rules/zz.yaml")
    assert problem.message.startswith("cannot read file: No such file or directory"), problem


def test_every_truncation_of_a_rule_file(tmp_path: Path) -> None:
    """A save caught half-way, at every byte: loaded or refused, never a crash."""
    tree = make_tree(tmp_path)
    data = (
        GOOD_RULES + "  - name: \u00e9t\u00e9-200\n    when: {expr: 'price(NVDA) > 2'}\n"
    ).encode()
    outcomes = set()
    for end in range(len(data) + 1):
        (tree / "rules" / "zz.yaml").write_bytes(data[:end])
        outcomes.add(type(check_outcome(tree)).__name__)
    assert outcomes == {"Config", "ConfigError"}


def test_calendar_files_named_in_alerts_yaml(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "c.csv").write_bytes(RANDOM_300)
    for setting, says in (
        ("calendar: {earnings: c.csv}", "the earnings calendar: not UTF-8 text"),
        ("anchors_csv: c.csv", "cannot read the anchor prices: 'utf-8' codec can't decode"),
        ('calendar: {earnings: "c\\0.csv"}', "embedded null byte"),
        ("anchors_csv: rules", "cannot read the anchor prices"),
    ):
        (tree / "alerts.yaml").write_text(ALERTS + setting + "\n")
        outcome = check_outcome(tree)
        assert isinstance(outcome, ConfigError) and says in str(outcome), (setting, outcome)


def make_tree(root: Path) -> Path:
    (root / "rules").mkdir()
    (root / "alerts.yaml").write_text(ALERTS)
    (root / "rules" / "good.yaml").write_text(GOOD_RULES)
    return root


# --- properties: arbitrary bytes, text and YAML ---------------------------------------------

PROPS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.dates(min_value=dt.date(1900, 1, 1))
    | st.sampled_from(["NVDA", "mag", "console", "5m", "1h", "${HOME}", "$$", "~", "yes", "on"])
)
keys = st.text(max_size=10) | st.sampled_from(
    ["rules", "name", "when", "threshold", "symbols", "above", "channels", "include", "groups"]
)
documents = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(keys, kids, max_size=4),
    max_leaves=20,
)

symbols = st.sampled_from(["NVDA", "AAPL", "mag", "nvda", "NOPE", "", "mag7", "BRK.B"]) | st.lists(
    st.sampled_from(["NVDA", "mag", "x"]), max_size=3
)
levels = st.floats() | st.integers(-(10**30), 10**30) | st.sampled_from(["1", "x", None, True])
durations = st.sampled_from(["5m", "1h", "0s", "-1m", "forever", "30 minutes", 5, None, "1e9d"])
exprs = st.sampled_from(
    [
        "price(NVDA) > 100",
        "price(NVDA) ** 99999999 < 1",
        "zscore(price(NVDA), 20d) < -2",
        "price(NOPE) > 1",
        "(" * 300 + "1" + ")" * 300 + " > 0",
        "price(NVDA).__class__ < 1",
        "1 >",
    ]
) | st.text(max_size=30)
conditions = st.one_of(
    st.builds(lambda s, a: {"threshold": {"symbols": s, "above": a}}, symbols, levels),
    st.builds(lambda s, b: {"threshold": {"symbols": s, "below": b, "clear": b}}, symbols, levels),
    st.builds(
        lambda a, b, lvl, how: {"spread": {"a": a, "b": b, "above": lvl, "as": how}},
        symbols,
        symbols,
        levels,
        st.sampled_from(["difference", "ratio", "return", "sum"]),
    ),
    st.builds(
        lambda s, lvl, d: {"crosses": {"symbols": s, "level": lvl, "direction": d}},
        symbols,
        levels,
        st.sampled_from(["up", "down", "any", "sideways"]),
    ),
    st.builds(
        lambda s, lo, hi: {"band": {"symbols": s, "lower": lo, "upper": hi}},
        symbols,
        levels,
        levels,
    ),
    st.builds(
        lambda s, w, up: {"pct_move": {"symbols": s, "window": w, "up": up}},
        symbols,
        durations,
        levels,
    ),
    st.builds(lambda s, d: {"stale": {"symbols": s, "after": d}}, symbols, durations),
    st.builds(lambda e: {"expr": e}, exprs),
    st.builds(
        lambda s, words, rx: {"headline": {"symbols": s, "any_of": words, "regex": rx}},
        symbols,
        st.lists(st.text(max_size=8), max_size=3),
        st.sampled_from(["(", "x+", "[a-z]", "(a+)+$", None]),
    ),
    documents,
)
whens = st.recursive(
    conditions,
    lambda kids: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(kids, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(kids, max_size=3)),
        st.builds(lambda x: {"not": x}, kids),
        st.builds(lambda n, x: {"breadth": {"at_least": n, "of": x}}, st.integers(-1, 5), kids),
    ),
    max_leaves=4,
)
rules = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True) | st.text(max_size=8),
        "when": whens,
        "channels": st.sampled_from([["console"], ["nope"], [], "console", None]),
    },
    optional={
        "for": durations,
        "cooldown": durations,
        "severity": st.sampled_from(["warning", "critical", "info", "loud"]),
        "message": st.sampled_from(
            ["{value}", "{nope}", "{value.__class__}", "{", "NVDA {value:.2f}"]
        ),
        "trigger": st.sampled_from(["change", "once", "every_time", "never"]),
        "expires": st.datetimes() | st.text(max_size=5),
        "enabled": st.booleans(),
    },
)
rule_files = st.fixed_dictionaries({"rules": st.lists(rules, max_size=3)})
settings_docs = st.dictionaries(
    st.sampled_from(sorted(Settings.model_fields)), documents, max_size=5
)


def dump(doc: Any, unicode: bool) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=unicode, sort_keys=False).encode()


@PROPS
@given(data=st.binary(max_size=2000))
@example(data=RANDOM_300)
@example(data=NAMED["UTF-16 with a BOM"][0])
@example(data=NAMED["UTF-16 LE without a BOM"][0])
@example(data=NAMED["a bell character"][0])
@example(data=NAMED["a complex key"][0])
@example(data=NAMED["!!python/name"][0])
@example(data=NAMED["billion laughs"][0])
@example(data=NAMED["a self-referencing alias"][0])
@example(data=NAMED["not a date"][0])
@example(data=b"\xef\xbb\xbf" + GOOD_RULES.encode())
def test_any_bytes_load_or_are_refused(trees: Trees, data: bytes) -> None:
    load_yaml_never_raises(trees.rule / "rules" / "zz.yaml", data)
    trees.both(data)


@PROPS
@given(text=st.text(max_size=300), encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le"]))
def test_any_text_loads_or_is_refused(trees: Trees, text: str, encoding: str) -> None:
    trees.both(text.encode(encoding, "surrogatepass"))


@PROPS
@given(doc=documents, unicode=st.booleans())
def test_any_yaml_document_loads_or_is_refused(trees: Trees, doc: Any, unicode: bool) -> None:
    trees.both(dump(doc, unicode))


@PROPS
@given(doc=rule_files, unicode=st.booleans())
def test_any_rule_file_shape_loads_or_is_refused(trees: Trees, doc: Any, unicode: bool) -> None:
    data = dump(doc, unicode)
    trees.as_rule_file(data)
    trees.as_alerts_yaml(ALERTS.encode() + data)  # rules written in alerts.yaml itself


@PROPS
@given(doc=settings_docs, unicode=st.booleans())
def test_any_settings_shape_loads_or_is_refused(trees: Trees, doc: Any, unicode: bool) -> None:
    trees.as_alerts_yaml(dump(doc, unicode))


@PROPS
@given(doc=rule_files, at=st.integers(0, 10_000), junk=st.binary(min_size=1, max_size=8))
def test_a_damaged_rule_file_loads_or_is_refused(
    trees: Trees, doc: Any, at: int, junk: bytes
) -> None:
    data = dump(doc, True)
    at %= len(data) + 1
    trees.as_rule_file(data[:at] + junk + data[at + len(junk) :])


def load_yaml_never_raises(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    src, problems = load_yaml(path, "zz.yaml", env={})
    assert src.data is not None or problems


# --- the CLI: `tickwatch check` and `tickwatch test` exit 2, no traceback ------------------


@dataclass
class Run:
    returncode: int
    output: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _tree_with(root: Path, name: str, data: bytes) -> Path:
    tree = root / name
    tree.mkdir()
    make_tree(tree)
    (tree / "rules" / "zz.yaml").write_bytes(data)
    return tree


TEST_CASE = """\
tests:
  - name: nothing fires
    start: 2026-04-09T10:00:00-04:00
    input_series: {NVDA: "99 99"}
    expect: []
"""


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every CLI invocation of this module, started at once (each pays ~1.5 s of imports)."""
    root = tmp_path_factory.mktemp("cli")
    check: dict[str, tuple[list[str], Path]] = {}
    for name, data in (
        ("random", RANDOM_300),
        ("utf16", GOOD_RULES.encode("utf-16")),
        ("utf16-nobom", GOOD_RULES.encode("utf-16-le")),
        ("bell", NAMED["a bell character"][0]),
        ("python-tag", NAMED["!!python/name"][0]),
    ):
        check[f"check {name}"] = (
            ["check", "--config", "alerts.yaml"],
            _tree_with(root, name, data),
        )
    tests = root / "tests_tree"
    tests.mkdir()
    make_tree(tests)
    t = tests / "t"
    t.mkdir()
    (t / "binary.yaml").write_bytes(RANDOM_300)
    (t / "utf16.yaml").write_bytes(("config: ../alerts.yaml\n" + TEST_CASE).encode("utf-16"))
    (t / "python.yaml").write_bytes(b"config: !!python/name:os.system\n" + TEST_CASE.encode())
    (t / "nul-config.yaml").write_bytes(b'config: "a\\0b"\n' + TEST_CASE.encode())
    for f in ("binary", "utf16", "python", "nul-config"):
        check[f"test {f}"] = (["test", f"t/{f}.yaml"], tests)
    # a valid config with a non-ASCII file name, on a terminal that is not UTF-8
    ascii_tree = _tree_with(root, "ascii", GOOD_RULES.replace("nvda-100", "x").encode())
    (ascii_tree / "rules" / "zz.yaml").rename(ascii_tree / "rules" / "r\u00e8gles.yaml")
    check["check ascii terminal"] = (["check", "--config", "alerts.yaml"], ascii_tree)
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            cwd=cwd,
            env=_env() | ({"PYTHONIOENCODING": "ascii"} if "ascii" in name else {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, (args, cwd) in check.items()
    }
    out = {}
    try:
        for name, proc in procs.items():
            stdout, _ = proc.communicate(timeout=60)
            out[name] = Run(proc.returncode, stdout)
    finally:
        for proc in procs.values():
            proc.kill()
    return out


CHECK_SAYS = {
    "random": "rules/zz.yaml:1: is not text (byte 0x",
    "utf16": "rules/zz.yaml: is not UTF-8 text (looks like UTF-16 LE, with a BOM): save it as",
    "utf16-nobom": "rules/zz.yaml: is not UTF-8 text (looks like UTF-16 LE, without a BOM)",
    "bell": "rules/zz.yaml:2: contains a control character U+0007 at line 2 column 15",
    "python-tag": "rules/zz.yaml:1: rules: YAML tag !!python/name:os.system is not supported",
}


def test_check_on_a_terminal_that_cannot_show_a_file_name(cli_runs: dict[str, Run]) -> None:
    run = cli_runs["check ascii terminal"]
    assert run.returncode == 0, run.output
    assert "rules/r\\xe8gles.yaml" in run.output and "Traceback" not in run.output


@pytest.mark.parametrize("case", list(CHECK_SAYS))
def test_check_on_a_hostile_rule_file_exits_2_with_the_file_and_line(
    cli_runs: dict[str, Run], case: str
) -> None:
    run = cli_runs[f"check {case}"]
    print(run.output)
    assert run.returncode == 2, run.output
    assert "zz.yaml:" in run.output and CHECK_SAYS[case] in run.output, run.output
    assert "Traceback" not in run.output


TEST_SAYS = {
    "binary": "t/binary.yaml:1: is not text",
    "utf16": "t/utf16.yaml: is not UTF-8 text (looks like UTF-16",
    "python": "t/python.yaml:1: config: YAML tag !!python/name:os.system is not supported",
    "nul-config": "t/nul-config.yaml:1: config: cannot use 'a\\x00b': the path contains a NUL",
}


@pytest.mark.parametrize("case", list(TEST_SAYS))
def test_tickwatch_test_on_a_broken_test_file_exits_2(cli_runs: dict[str, Run], case: str) -> None:
    run = cli_runs[f"test {case}"]
    assert run.returncode == 2, run.output
    assert TEST_SAYS[case] in run.output, run.output
    assert "1 test file invalid" in run.output and "Traceback" not in run.output


def test_check_outcome_helper_rejects_other_exceptions(
    trees: Trees, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The properties above would catch a crash: a loader that raises fails check_outcome."""

    def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr("daemon.rules.schema.RuleFile.model_validate", boom)
    with pytest.raises(AssertionError, match=INTERNAL_ERROR):
        trees.as_rule_file(GOOD_RULES.encode())
