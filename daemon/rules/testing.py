"""Rule unit tests: `tickwatch test rules/tests/*.yaml`, in the spirit of `promtool test rules`.

A trader must be able to prove that a rule does what they think before it goes live, and the
proof is only worth something if it runs the code the daemon runs. So a test here loads the
real `alerts.yaml` with `load_config`, compiles it with `Config.compile`, and feeds synthetic
ticks and headlines through the daemon's own `Driver`, with the clock stepping every 5 s of
simulated time as the daemon's does (so no-data, stale, bar-close rules and reminders behave as
they do live): there is no second evaluator to drift from the first (ElastAlert's `test-rule`
re-implemented its matching and so could disagree with the daemon it was meant to vouch for).

Test file format
----------------

    # rules/tests/rotation.yaml
    config: ../../alerts.yaml     # required; relative to this file. Groups, channels, rules.
    rule_files: [../rotation.yaml]  # optional: only rules from these files (default: all)
    tests:
      - name: spread below 8 for 15 minutes fires once   # required, unique in the file
        start: 2026-04-09T13:00:00-04:00  # required: aware timestamp (an offset or Z)
        interval: 1m                      # spacing of series values (default 1m)
        anchors: {XMAG: 25.0, MAGS: 60.0} # optional: anchor prices for `as: return` spreads
        input_series:                     # symbol -> values, one per interval
          XMAG: "27.1x4 26.95x30"
          MAGS: 60.0
        headlines:                        # optional
          - {at: 10m, title: "Microsoft raises AI capex guidance", symbols: [MSFT],
             sentiment: 0.45, ticker_sentiment: {MSFT: 0.52}, summary: "...", source: "..."}
        expect:                           # required (`expect: []` = nothing is told)
          - {at: 20m, rule: xmag-mags-ytd-spread-compresses, state: firing,
             labels: {pair: XMAG/MAGS}, value: {approx: 7.8, tol: 0.01}}
          - {at: 45m, rule: xmag-mags-ytd-spread-compresses, state: resolved}

Series notation (promtool's): values separated by spaces; `a` one value; `axN` the value a,
N+1 times; `a+bxN` / `a-bxN` a then N more values stepping by b (`1+2x3` is `1 3 5 7`); `_`
no tick at that step and `_xN` N steps without a tick (a gap: a feed outage, a night). Values
are prices and must be positive, as the daemon's edge refuses others. A bare number
(`MAGS: 60.0`) is a one-value series.

Feed order: the value at index i of every series is a tick at `start + i*interval`; the ticks
of one step carry one event time and are applied together before any rule reads them, as in
the daemon (a spread sees both legs of the step). Headlines are fed at their `at`; at the same
instant ticks come first, as in the daemon's evaluator, and headlines keep file order. Ticks
are trades (`kind: trade`), so legs of a spread are judged together while each one's last
price is at most the rule's `max_skew` older than the other's (5m unless the rule says).

Symbols in `input_series` and `headlines` must be ones the config knows: the daemon's edge
drops ticks of other symbols, and a typo in a test that expects silence would pass unnoticed.

Times: `at` (headlines and expectations) is an offset from `start` as a duration (`0`, `17m`,
`1h30m`, `2d`) or an absolute aware timestamp. Naive timestamps are refused, never guessed.

Anchors: `as: return` spreads need each leg's price at the anchor date (Jan 1 for `ytd`).
`anchors: {SYM: price}` sets it for every anchor date the rules track for SYM on or before
`start`, exactly as the daemon restores anchors from its checkpoint after a restart. Without
it, give the series a tick before the anchor date: the engine freezes the last price before
midnight New York as the anchor when the first tick after it arrives, as it does live.

Expectations list every transition the engine tells, in time order: a firing or resolved
held back by `cooldown` is not told and so is not listed. Each one matches a transition
with the same time, `rule` and `state`, whose labels include `labels` (a subset), and, when
given, whose `value` is within tolerance (`value: 7.8` means within 1e-6; `value: {approx:
7.8, tol: 0.05}` sets the tolerance), whose `summary` (the rendered message) is equal, and
whose `channels` (where the rule routes it; a channel switched off for lack of a token is
the dispatcher's business) are the same set. A headline transition's value is the sentiment
score the rule used. Transitions at the same instant may be listed in any order.

Output: `PASS file: name` or `FAIL file:line: name` and a diff per test (`-` expected, `+`
got, times in New York), then `N passed, M failed`. Problems in a test file are printed as
`file:line: path: message`, a broken `config:` as the config's own problems. Exit 0 when all
pass, 1 when a test failed, 2 when a test file (or its config) is invalid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TextIO

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.config import Config, ConfigError, load_config, translate
from daemon.durations import Duration, format_duration, parse_duration
from daemon.events import EarningsEvent, Headline, Tick, dt_to_ms
from daemon.rules.compile import Plan
from daemon.rules.driver import Driver, simulate
from daemon.rules.market import anchor_start_ms
from daemon.yamlsrc import Path_, Problem, YamlSource, load_yaml

__all__ = [
    "Approx",
    "Case",
    "CaseResult",
    "CaseSpec",
    "DiffLine",
    "ExpectSpec",
    "Expected",
    "HeadlineSpec",
    "Suite",
    "SuiteSpec",
    "build_events",
    "compare",
    "expand_series",
    "load_suite",
    "main",
    "matches",
    "parse_at",
    "parse_start",
    "render_result",
    "run_case",
    "run_suite",
]

DEFAULT_TOL = 1e-6
#: A series longer than this is a typo (`1x99999999`), not a test: refuse before allocating.
MAX_SERIES = 200_000
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2

# --- series notation (pure) -----------------------------------------------------------------

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TOKEN = re.compile(rf"^(?P<a>[+-]?{_NUM})(?:(?P<op>[+-])(?P<b>{_NUM}))?(?:x(?P<n>\d+))?$")
_GAP = re.compile(r"^_(?:x(?P<n>\d+))?$")
_SERIES_HELP = "write numbers, axN (a, N+1 times), a+bxN or a-bxN (a then N steps of b), _ or _xN"


def expand_series(text: str) -> list[float | None]:
    """Expand promtool-style series notation; None is a step without a tick.

    Values are computed as `a + k*b` (not by repeated addition) and rounded to 1e-9, so
    `60+0.05x30` ends at exactly 61.5 rather than 61.50000000000003.
    """
    out: list[float | None] = []
    tokens = text.split()
    if not tokens:
        raise ValueError(f"empty series; {_SERIES_HELP}")
    for i, tok in enumerate(tokens, 1):
        gap = _GAP.match(tok)
        if gap:
            n = int(gap.group("n")) if gap.group("n") is not None else 1
            _check_len(len(out) + n)
            out.extend([None] * n)
            continue
        m = _TOKEN.match(tok)
        if m is None:
            hint = " (tickwatch has no stale marker: use _ for no tick)" if tok == "stale" else ""
            raise ValueError(f"value {i} {tok!r} is not series notation{hint}; {_SERIES_HELP}")
        a = float(m.group("a"))
        if m.group("op") is not None and m.group("n") is None:
            raise ValueError(f"value {i} {tok!r} has a step but no count; write e.g. {tok}x10")
        step = float(m.group("b")) if m.group("b") is not None else 0.0
        step = -step if m.group("op") == "-" else step
        n = int(m.group("n")) if m.group("n") is not None else 0
        _check_len(len(out) + n + 1)
        for k in range(n + 1):
            price = round(a + k * step, 9)
            if price <= 0:
                raise ValueError(
                    f"value {i} {tok!r} reaches {price:g} at its step {k}; prices must be "
                    "positive (the daemon's edge refuses others)"
                )
            out.append(price)
    return out


def _check_len(n: int) -> None:
    if n > MAX_SERIES:
        raise ValueError(f"series expands to more than {MAX_SERIES} values")


def _series(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected series notation, got {value!r}; {_SERIES_HELP}")
    if isinstance(value, int | float):
        if not value > 0:
            raise ValueError(f"price {value!r} must be positive (the daemon's edge refuses others)")
        return [float(value)]
    if isinstance(value, str):
        return expand_series(value)
    raise ValueError(f'expected a string of series notation, e.g. "27.7 27.7x30"; {_SERIES_HELP}')


# --- times (pure) ---------------------------------------------------------------------------


def _aware(value: Any, what: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not {what}; write e.g. 2026-04-09T13:00:00-04:00"
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            offset = value.replace(tzinfo=NEW_YORK).strftime("%z")
            iso = value.isoformat(timespec="seconds")
            raise ValueError(
                f"{iso} has no UTC offset; write {iso}{offset[:3]}:{offset[3:]} for New York "
                "time (or add Z for UTC)"
            )
        return value
    if isinstance(value, dt.date):
        raise ValueError(f"{value} is a date; write a time too, e.g. {value}T09:30:00-04:00")
    raise ValueError(f"{value!r} is not {what}; write e.g. 2026-04-09T13:00:00-04:00")


def parse_start(value: Any) -> dt.datetime:
    """A test's `start`: an aware timestamp (a naive one is refused, with the fix spelled out)."""
    return _aware(value, "a timestamp")


def parse_at(value: Any) -> dt.timedelta | dt.datetime:
    """An `at`: an offset from `start` (a duration) or an absolute aware timestamp."""
    if isinstance(value, dt.datetime | dt.date):
        return _aware(value, "a timestamp")
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\d", value.strip()):
        return _aware(value, "a timestamp")
    try:
        return parse_duration(value)
    except ValueError as e:
        raise ValueError(f"{e} (an offset from start), or an aware timestamp") from None


def _ms(td: dt.timedelta) -> int:
    return round(td / dt.timedelta(milliseconds=1))


def _at_ms(at: dt.timedelta | dt.datetime, start_ms: int) -> int:
    return dt_to_ms(at) if isinstance(at, dt.datetime) else start_ms + _ms(at)


# --- the file's shape (pydantic) ------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_list(value: Any) -> Any:
    """`symbols: MSFT` means `[MSFT]`: one name is the common case, so let it be written so."""
    return [value] if isinstance(value, str) else value


At = Annotated[dt.timedelta | dt.datetime, BeforeValidator(parse_at)]
Series = Annotated[list[float | None], BeforeValidator(_series)]


class Approx(_Model):
    """An expected value and how far the real one may be from it."""

    approx: float = Field(allow_inf_nan=False)
    tol: float = Field(DEFAULT_TOL, ge=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, bool | str):
            raise ValueError(
                f"{data!r} is not a value; write value: 7.8 or value: {{approx: 7.8, tol: 0.05}}"
            )
        return {"approx": data} if isinstance(data, int | float) else data


class HeadlineSpec(_Model):
    """A headline to feed, with the fields rules read (keywords, symbols, sentiment, source)."""

    at: At
    title: str = Field(min_length=1)
    summary: str = ""
    symbols: Annotated[list[str], BeforeValidator(_one_or_list)] = Field(default_factory=list)
    source: str = "test"
    url: str = ""
    sentiment: float | None = Field(None, ge=-1, le=1)
    ticker_sentiment: dict[str, Annotated[float, Field(ge=-1, le=1)]] = Field(default_factory=dict)
    id: str | None = None


class ExpectSpec(_Model):
    """One expected transition; omitted fields are not compared (labels: a subset)."""

    at: At
    rule: str
    state: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    value: Approx | None = None
    summary: str | None = None
    channels: Annotated[list[str], BeforeValidator(_one_or_list)] | None = None


class EarningsSpec(_Model):
    """A report for this test's calendar (instead of the config's `calendar.earnings` file)."""

    symbol: str
    date: dt.date
    when: Literal["bmo", "amc", "unknown"] = "amc"


class CaseSpec(_Model):
    """One test. `expect` is required (`[]` for silence) so a quiet test is said on purpose."""

    name: str = Field(min_length=1)
    start: Annotated[dt.datetime, BeforeValidator(parse_start)]
    interval: Duration = Field(default=dt.timedelta(minutes=1))
    anchors: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    input_series: dict[str, Series] = Field(default_factory=dict)
    headlines: list[HeadlineSpec] = Field(default_factory=list)
    earnings: list[EarningsSpec] | None = None
    until: At | None = Field(None, description="End of the test (default: its last event)")
    expect: list[ExpectSpec]

    @model_validator(mode="after")
    def _positive_interval(self) -> Self:
        if self.interval.total_seconds() <= 0:
            raise ValueError("interval must be longer than 0s, e.g. 1m")
        return self


class SuiteSpec(_Model):
    """A test file. `config` is required: rules are only meaningful with their groups."""

    config: str
    rule_files: list[str] | None = None
    tests: list[CaseSpec]

    @field_validator("tests")
    @classmethod
    def _some(cls, tests: list[CaseSpec]) -> list[CaseSpec]:
        if not tests:
            raise ValueError("no tests: add at least one (name, start, input_series, expect)")
        return tests


# --- resolved tests -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected transition, its time resolved to epoch ms, and where it was written."""

    ts_ms: int
    rule: str
    state: str
    labels: dict[str, str]
    value: float | None = None
    tol: float = DEFAULT_TOL
    summary: str | None = None
    channels: tuple[str, ...] | None = None
    line: int = 0


@dataclass(slots=True)
class Case:
    """One test, ready to run: the events to feed and the transitions to expect."""

    name: str
    file: str
    line: int
    start_ms: int
    events: list[Tick | Headline]
    expected: list[Expected]
    #: (symbol, anchor date) -> price, set on the engine's market before the first event.
    anchors: dict[tuple[str, dt.date], float] = field(default_factory=dict)
    #: The rules compiled with this test's own earnings calendar, when it gives one.
    plan: Plan | None = None
    earnings: list[EarningsEvent] = field(default_factory=list)
    #: Time-driven rules (reminders) are due up to here.
    end_ms: int = 0


@dataclass(slots=True)
class Suite:
    """One test file: the compiled rules under test and its cases."""

    file: str
    plan: Plan
    cases: list[Case]


def build_events(
    spec: CaseSpec, start_ms: int, file: str = "", index: int = 0
) -> list[Tick | Headline]:
    """The ticks and headlines of one test in feed order (see the module doc for the order)."""
    step_ms = _ms(spec.interval)
    keyed: list[tuple[int, int, int, Tick | Headline]] = []
    seq = 0
    steps = max((len(v) for v in spec.input_series.values()), default=0)
    for i in range(steps):
        ts = start_ms + i * step_ms
        for sym, values in spec.input_series.items():
            price = values[i] if i < len(values) else None
            if price is not None:
                keyed.append((ts, 0, seq, Tick(sym, ts, price, source="test")))
                seq += 1
    for j, h in enumerate(spec.headlines):
        ts = _at_ms(h.at, start_ms)
        headline = Headline(
            id=h.id or f"{Path(file).stem or 'test'}-{index}-{j}",
            ts_ms=ts,
            title=h.title,
            summary=h.summary,
            symbols=tuple(h.symbols),
            source=h.source,
            url=h.url,
            sentiment=h.sentiment,
            ticker_sentiment=dict(h.ticker_sentiment),
        )
        keyed.append((ts, 1, seq, headline))
        seq += 1
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def run_case(plan: Plan, case: Case) -> list[AlertEvent]:
    """Run one test's events through a fresh `Driver` over `plan` on simulated time, from the
    start to the end: every transition it tells, reminders and clock-driven ones included."""
    plan = case.plan or plan
    driver = Driver(plan, reminders_after_ms=case.start_ms - 1)
    driver.engine.market.anchors.prices.update(case.anchors)
    out = simulate(driver, case.events, start_ms=case.start_ms, until_ms=case.end_ms)
    out.sort(key=lambda a: a.ts_ms)  # stable: same-instant order from the driver is kept
    return out


# --- comparison (pure) ----------------------------------------------------------------------


def matches(e: Expected, a: AlertEvent) -> bool:
    """Whether the transition `a` is the expected `e` (labels: subset; value: within tol)."""
    if (e.ts_ms, e.rule, e.state) != (a.ts_ms, a.rule, a.state):
        return False
    if any(a.labels.get(k) != v for k, v in e.labels.items()):
        return False
    if e.value is not None and (a.value is None or not abs(a.value - e.value) <= e.tol):
        return False
    if e.summary is not None and e.summary != a.summary:
        return False
    return e.channels is None or sorted(e.channels) == sorted(a.channels)


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a test's diff: `' '` as expected, `'-'` expected only, `'+'` got only."""

    mark: Literal[" ", "-", "+"]
    expected: Expected | None
    got: AlertEvent | None


def _align_same_instant(expected: list[Expected], got: list[AlertEvent]) -> list[AlertEvent]:
    """`got` with transitions of one instant reordered to follow the expectations' order.

    Several alerts changing at one instant come out in plan order, which a test author should
    not have to know; only the order of instants is significant.
    """
    out: list[AlertEvent] = []
    i = 0
    while i < len(got):
        j = i
        while j < len(got) and got[j].ts_ms == got[i].ts_ms:
            j += 1
        group = got[i:j]
        placed: list[AlertEvent] = []
        for e in expected:
            if e.ts_ms != got[i].ts_ms:
                continue
            for k, a in enumerate(group):
                if matches(e, a):
                    placed.append(group.pop(k))
                    break
        out += placed + group
        i = j
    return out


def compare(expected: Sequence[Expected], got: Sequence[AlertEvent]) -> list[DiffLine]:
    """Align expected and actual transitions (longest common subsequence under `matches`).

    The test passes when every line is `' '`. Unmatched lines between two matches are merged
    by time, expected before got at one instant, so a near miss shows as a `-`/`+` pair.
    """
    exp = list(expected)
    act = _align_same_instant(exp, list(got))
    n, m = len(exp), len(act)
    if n * m > 4_000_000:  # far beyond any hand-written test; pair by position, stay linear
        pairs = [(i, i) for i in range(min(n, m)) if matches(exp[i], act[i])]
    else:
        lcs = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            for j in range(m - 1, -1, -1):
                if matches(exp[i], act[j]):
                    lcs[i][j] = lcs[i + 1][j + 1] + 1
                else:
                    lcs[i][j] = max(lcs[i + 1][j], lcs[i][j + 1])
        pairs = []
        i = j = 0
        while i < n and j < m:
            if matches(exp[i], act[j]) and lcs[i][j] == lcs[i + 1][j + 1] + 1:
                pairs.append((i, j))
                i, j = i + 1, j + 1
            elif lcs[i + 1][j] >= lcs[i][j + 1]:
                i += 1
            else:
                j += 1
    out: list[DiffLine] = []
    i = j = 0
    for pi, pj in [*pairs, (n, m)]:
        run: list[tuple[int, int, DiffLine]] = [
            (exp[k].ts_ms, 0, DiffLine("-", exp[k], None)) for k in range(i, pi)
        ]
        run += [(act[k].ts_ms, 1, DiffLine("+", None, act[k])) for k in range(j, pj)]
        out += [d for _, _, d in sorted(run, key=lambda r: (r[0], r[1]))]
        if pi < n and pj < m:
            out.append(DiffLine(" ", exp[pi], act[pj]))
        i, j = pi + 1, pj + 1
    return out


@dataclass(slots=True)
class CaseResult:
    file: str
    name: str
    line: int
    start_ms: int
    diff: list[DiffLine]
    expected: list[Expected]

    @property
    def passed(self) -> bool:
        return all(d.mark == " " for d in self.diff)


def _when(ts_ms: int, start_ms: int) -> str:
    local = dt.datetime.fromtimestamp(ts_ms / 1000, NEW_YORK)
    delta = ts_ms - start_ms
    offset = format_duration(dt.timedelta(milliseconds=abs(delta)))
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({'-' if delta < 0 else '+'}{offset})"


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}" if labels else ""


def _num(v: float) -> str:
    return f"{v:.10g}"


def _describe_expected(e: Expected, start_ms: int, file: str) -> str:
    text = f"{_when(e.ts_ms, start_ms)}  {e.state:<8}  {e.rule}{_labels(e.labels)}"
    if e.value is not None:
        text += f"  value={_num(e.value)}" + (f"±{_num(e.tol)}" if e.tol != DEFAULT_TOL else "")
    if e.channels is not None:
        text += f"  channels={','.join(e.channels)}"
    if e.summary is not None:
        text += f"  summary={e.summary!r}"
    return f"{text}  [{file}:{e.line}]"


def _describe_got(a: AlertEvent, start_ms: int, *, channels: bool, summary: bool) -> str:
    text = f"{_when(a.ts_ms, start_ms)}  {a.state:<8}  {a.rule}{_labels(a.labels)}"
    text += f"  value={_num(a.value)}" if a.value is not None else "  value=none"
    if channels:
        text += f"  channels={','.join(a.channels)}"
    if summary:
        text += f"  summary={a.summary!r}"
    return text


def render_result(r: CaseResult, *, context: int = 3) -> list[str]:
    """`PASS file: name`, or `FAIL file:line: name` and the diff, as lines of text."""
    if r.passed:
        return [f"PASS {r.file}: {r.name}"]
    show_ch = any(e.channels is not None for e in r.expected)
    show_sum = any(e.summary is not None for e in r.expected)
    start = dt.datetime.fromtimestamp(r.start_ms / 1000, NEW_YORK)
    lines = [
        f"FAIL {r.file}:{r.line}: {r.name}",
        f"    - expected, + got; New York time (offset from start {start:%Y-%m-%d %H:%M:%S %Z})",
    ]
    near = {
        k
        for i, d in enumerate(r.diff)
        if d.mark != " "
        for k in range(max(0, i - context), min(len(r.diff), i + context + 1))
    }
    skipped = 0
    for i, d in enumerate(r.diff):
        if i not in near:
            skipped += 1
            continue
        if skipped:
            lines.append(f"      ... {skipped} more as expected")
            skipped = 0
        if d.mark == "-" and d.expected is not None:
            lines.append(f"    - {_describe_expected(d.expected, r.start_ms, r.file)}")
        elif d.got is not None:
            text = _describe_got(d.got, r.start_ms, channels=show_ch, summary=show_sum)
            lines.append(f"    {d.mark} {text}")
    if skipped:
        lines.append(f"      ... {skipped} more as expected")
    if not r.expected:
        lines.append("      (the test expects nothing: expect: [])")
    return lines


# --- loading a test file (I/O at the edges) -------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; a gone cwd; a symlink loop
        return str(path)


def _resolved(path: Path) -> Path | str:
    """The absolute path, or why there is none (a NUL in it, a symlink loop)."""
    try:
        return path.resolve()
    except ValueError:
        return "the path contains a NUL character"
    except (OSError, RuntimeError) as e:
        return str(e)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


ConfigCache = dict[Path, Config | ConfigError | OSError]


def load_suite(
    path: Path,
    *,
    env: Mapping[str, str] | None = None,
    configs: ConfigCache | None = None,
    reported: set[Path] | None = None,
) -> tuple[Suite | None, list[str]]:
    """Read, validate and resolve one test file: (suite, []) or (None, lines to print).

    The test file is read with an empty environment (`${VAR:-default}` gives the default:
    tests must not depend on the shell they run in); its `config:` is loaded as the daemon
    loads it, with `env` (default: the process environment). `configs` caches loaded configs
    across files and `reported` keeps a broken config's problems from being printed once per
    test file that uses it.
    """
    configs = {} if configs is None else configs
    reported = set() if reported is None else reported
    display = _display(path)
    src, problems = load_yaml(path, display, env={})
    if src.data is None or problems:
        return None, [str(p) for p in problems]
    if not isinstance(src.data, dict):
        return None, [str(src.problem((), "expected a mapping with config: and tests:"))]
    try:
        spec = SuiteSpec.model_validate(src.data)
    except ValidationError as e:
        return None, [str(p) for p in translate(e, src, SuiteSpec)]

    cfg_path = _resolved(path.parent / spec.config)
    if isinstance(cfg_path, str):
        return None, [str(src.problem(("config",), f"cannot use {spec.config!r}: {cfg_path}"))]
    if not cfg_path.is_file():
        return None, [
            str(
                src.problem(
                    ("config",), f"no such file {spec.config!r} (looked for {_display(cfg_path)})"
                )
            )
        ]
    if cfg_path not in configs:
        try:
            configs[cfg_path] = load_config(cfg_path, env=env)
        except (ConfigError, OSError) as e:
            configs[cfg_path] = e
    cfg = configs[cfg_path]
    if not isinstance(cfg, Config):
        head = src.problem(("config",), f"the config {spec.config} is invalid")
        if cfg_path in reported:
            return None, [f"{head} (its problems are listed above)"]
        reported.add(cfg_path)
        detail = str(cfg) if isinstance(cfg, ConfigError) else f"cannot read: {cfg.strerror}"
        return None, [f"{head}:", *detail.splitlines()]

    return _resolve(src, spec, path, cfg)


def _resolve(
    src: YamlSource, spec: SuiteSpec, path: Path, cfg: Config
) -> tuple[Suite | None, list[str]]:
    """Cross-check a well-formed test file against its config and resolve it into a `Suite`."""
    problems: list[Problem] = []
    rules = cfg.rules
    if spec.rule_files is not None:
        loaded = {Path(f).resolve(): f for f in cfg.files}
        keep: set[str] = set()
        for i, rf in enumerate(spec.rule_files):
            target = _resolved(path.parent / rf)
            if isinstance(target, str):
                problems.append(src.problem(("rule_files", i), f"cannot use {rf!r}: {target}"))
            elif target in loaded:
                keep.add(loaded[target])
            else:
                problems.append(
                    src.problem(
                        ("rule_files", i),
                        f"{rf!r} ({_display(target)}) is not a rule file of {spec.config}; "
                        f"its files: {', '.join(cfg.files)}",
                    )
                )
        rules = [lr for lr in cfg.rules if lr.file in keep]
    plan = cfg.compile(lr.rule for lr in rules)
    by_name = {lr.rule.name: lr for lr in cfg.rules}
    selected = {lr.rule.name: lr for lr in rules}
    universe = cfg.universe
    market = plan.new_market()

    def check_symbol(where: Path_, sym: str) -> None:
        if sym not in universe:
            known = ", ".join(sorted(universe))
            problems.append(
                src.problem(
                    where,
                    f"unknown symbol {sym!r}{_did_you_mean(sym, universe)}; the daemon only "
                    f"accepts symbols named in {spec.config}: {known}",
                )
            )

    cases: list[Case] = []
    names: dict[str, int] = {}
    for ti, case in enumerate(spec.tests):
        base: Path_ = ("tests", ti)
        line = src.line_of(base)
        if case.name in names:
            problems.append(
                src.problem(
                    (*base, "name"),
                    f"duplicate test name {case.name!r} (also at line {names[case.name]})",
                )
            )
        names.setdefault(case.name, line)
        start_ms = dt_to_ms(case.start)
        for sym in case.input_series:
            check_symbol((*base, "input_series", sym), sym)
        for hi, h in enumerate(case.headlines):
            for si, sym in enumerate(h.symbols):
                check_symbol((*base, "headlines", hi, "symbols", si), sym)
        anchors: dict[tuple[str, dt.date], float] = {}
        start_year = dt.datetime.fromtimestamp(start_ms / 1000, NEW_YORK).year
        for sym, price in case.anchors.items():
            days = set(market.anchor_days.get(sym, ()))
            if sym in market.ytd_symbols:
                days.add(dt.date(start_year, 1, 1))
            days = {d for d in days if anchor_start_ms(d) <= start_ms}
            if not days:
                problems.append(
                    src.problem(
                        (*base, "anchors", sym),
                        f"no rule under test measures a return of {sym!r} from an anchor date "
                        "on or before start; anchors apply to spread rules with as: return",
                    )
                )
            for d in days:
                anchors[(sym, d)] = price
        expected: list[Expected] = []
        for ei, e in enumerate(case.expect):
            where: Path_ = (*base, "expect", ei)
            if e.rule not in selected:
                if e.rule in by_name:
                    msg = (
                        f"rule {e.rule!r} is in {by_name[e.rule].file}, which rule_files leaves out"
                    )
                else:
                    hint = _did_you_mean(e.rule, selected or by_name)
                    under_test = ", ".join(selected) or "(none)"
                    msg = f"unknown rule {e.rule!r}{hint}; rules under test: {under_test}"
                problems.append(src.problem((*where, "rule"), msg))
            elif not selected[e.rule].rule.enabled:
                problems.append(
                    src.problem(
                        (*where, "rule"),
                        f"rule {e.rule!r} is disabled (enabled: false) and never fires",
                    )
                )
            ts = _at_ms(e.at, start_ms)
            if expected and ts < expected[-1].ts_ms:
                problems.append(
                    src.problem(
                        (*where, "at"),
                        f"expectations must be in time order: this one is before the one at "
                        f"line {expected[-1].line}",
                    )
                )
            expected.append(
                Expected(
                    ts_ms=ts,
                    rule=e.rule,
                    state=e.state,
                    labels=dict(e.labels),
                    value=e.value.approx if e.value is not None else None,
                    tol=e.value.tol if e.value is not None else DEFAULT_TOL,
                    summary=e.summary,
                    channels=tuple(e.channels) if e.channels is not None else None,
                    line=src.line_of(where),
                )
            )
        events = build_events(case, start_ms, src.file, ti)
        case_plan, earnings = None, cfg.earnings
        if case.earnings is not None:
            earnings = [EarningsEvent(e.symbol, e.date, e.when) for e in case.earnings]
            case_plan = cfg.compile((lr.rule for lr in rules), earnings)
        end_ms = (
            _at_ms(case.until, start_ms)
            if case.until is not None
            else max([start_ms, *(e.ts_ms for e in events), *(x.ts_ms for x in expected)])
        )
        cases.append(
            Case(
                case.name,
                src.file,
                line,
                start_ms,
                events,
                expected,
                anchors,
                plan=case_plan,
                earnings=earnings,
                end_ms=end_ms,
            )
        )
    if problems:
        return None, [str(p) for p in sorted(problems, key=lambda p: p.line)]
    return Suite(src.file, plan, cases), []


def run_suite(suite: Suite) -> list[CaseResult]:
    """Run every case of a suite on a fresh engine each; pure apart from the engine's work."""
    results = []
    for c in suite.cases:
        got = run_case(suite.plan, c)
        diff = compare(c.expected, got)
        results.append(CaseResult(c.file, c.name, c.line, c.start_ms, diff, c.expected))
    return results


def _test_files(paths: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        try:
            if path.is_dir():
                out += sorted(q for q in path.iterdir() if q.suffix in (".yaml", ".yml"))
                continue
        except OSError:  # an unreadable directory: load_suite says why
            pass
        out.append(path)
    return out


def main(
    paths: list[str],
    *,
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run rule tests; exit 0 all passed, 1 a test failed, 2 a test file or config is invalid.

    `out` defaults to `sys.stdout` at call time (so captured output works in tests). Every
    valid file runs even when another is invalid, so one run reports everything.
    """
    out = sys.stdout if out is None else out
    files = _test_files(paths)
    if not files:
        print(
            "tickwatch test: no test files given (e.g. tickwatch test rules/tests/*.yaml)", file=out
        )
        return EXIT_INVALID
    configs: ConfigCache = {}
    reported: set[Path] = set()
    passed = failed = invalid = 0
    for path in files:
        try:
            suite, problems = load_suite(path, env=env, configs=configs, reported=reported)
        except Exception as e:  # a tickwatch bug: still exit 2 with the file named, not a traceback
            suite, problems = (
                None,
                [
                    f"{_display(path)}: internal error while reading this test file "
                    f"({type(e).__name__}: {e}); please report it as a tickwatch bug, with the file"
                ],
            )
        if suite is None:
            invalid += 1
            for line in problems:
                print(line, file=out)
            continue
        for result in run_suite(suite):
            if result.passed:
                passed += 1
            else:
                failed += 1
            for line in render_result(result):
                print(line, file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    if invalid:
        print(
            f"{invalid} test file{'s' * (invalid != 1)} invalid: fix the problems above", file=out
        )
        return EXIT_INVALID
    return EXIT_FAILED if failed else EXIT_OK


def _cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.rules.testing",
        description="Run rule unit tests (see the module docstring for the file format).",
    )
    parser.add_argument("paths", nargs="+", help="test files, or directories of them")
    args = parser.parse_args(argv)
    return main(list(args.paths))


if __name__ == "__main__":
    sys.exit(_cli())
