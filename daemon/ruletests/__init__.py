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

Modules: `notation` (series notation, times), `schema` (the file's pydantic models), `load`
(reading and resolving a file against its config), `run` (feeding a case through the
`Driver`), `diff` (expected against told), `report` (the text), `cli` (`main`, the exit code).
"""

from __future__ import annotations

from daemon.ruletests.cli import main
from daemon.ruletests.diff import CaseResult, DiffLine, Expected, compare, matches
from daemon.ruletests.load import load_suite
from daemon.ruletests.notation import expand_series, parse_at, parse_start
from daemon.ruletests.report import render_result
from daemon.ruletests.run import Case, Suite, build_events, run_case, run_suite
from daemon.ruletests.schema import Approx, CaseSpec, ExpectSpec, HeadlineSpec, SuiteSpec

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
