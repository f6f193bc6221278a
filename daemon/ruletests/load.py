"""Reading a rule-test file: validate it, load its config, cross-check and resolve its cases."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from daemon.alerts import NEW_YORK
from daemon.config import Config, ConfigError, load_config, translate
from daemon.events import EarningsEvent, dt_to_ms
from daemon.rules import anchor_start_ms
from daemon.ruletests.diff import Expected
from daemon.ruletests.notation import _at_ms
from daemon.ruletests.run import Case, Suite, build_events
from daemon.ruletests.schema import DEFAULT_TOL, SuiteSpec
from daemon.yamlsrc import Path_, Problem, YamlSource, load_yaml

__all__ = ["ConfigCache", "load_suite"]


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
