"""Cross-checks of the rules against the settings: symbols, groups, channels, routes, templates."""

from __future__ import annotations

import re
from typing import Any

from daemon.config.errors import _did_you_mean
from daemon.config.models import Config, Settings
from daemon.notify import ChannelConfig, RouteConfig, check_messages
from daemon.rules import CrossesCond, ExprError, Rule, check_template, compile_expr
from daemon.yamlsrc import Path_, Problem, YamlSource

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,14}$")
GROUP = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _cross_check(
    cfg: Config,
    main: YamlSource,
    sources: dict[str, YamlSource],
    rule_paths: list[Path_],
) -> list[Problem]:
    s = cfg.settings
    problems: list[Problem] = []
    for sym_i, sym in enumerate(s.symbols):
        if not SYMBOL.match(sym):
            problems.append(main.problem(("symbols", sym_i), _bad_symbol(sym)))
    for gname, members in s.groups.items():
        if not GROUP.match(gname):
            problems.append(
                main.problem(("groups", gname), f"group name {gname!r} must be lower-case")
            )
        for m_i, m in enumerate(members):
            if not SYMBOL.match(m):
                problems.append(main.problem(("groups", gname, m_i), _bad_symbol(m)))
    names = [c.name for c in s.sources]
    for i, n in enumerate(names):
        if names.index(n) != i:
            problems.append(main.problem(("sources", i, "name"), f"duplicate source name {n!r}"))

    for c_i, ch in enumerate(s.ops_channels):
        if ch not in s.channels:
            problems.append(
                main.problem(
                    ("ops_channels", c_i),
                    f"unknown channel {ch!r}{_did_you_mean(ch, s.channels)}",
                )
            )
    if s.route is not None:
        problems += _check_routes(main, s.route, ("route",), s.channels)
    seen: dict[str, str] = {}
    channel_types = {name: ch.type for name, ch in s.channels.items()}
    cache = cfg.file_cache
    passed = cache.passed_under((s.groups, channel_types))
    for lr, rpath in zip(cfg.rules, rule_paths, strict=True):
        rsrc = sources[lr.file]
        rule = lr.rule
        if rule.name in seen:
            problems.append(
                rsrc.problem(
                    (*rpath, "name"),
                    f"rule name {rule.name!r} is already used at {seen[rule.name]}; "
                    "rule names must be unique",
                )
            )
        seen.setdefault(rule.name, f"{lr.file}:{lr.line}")
        if id(rule) in passed:  # a cached rule, unchanged, checked against these settings
            continue
        found = _check_rule(rule, rsrc, rpath, s, channel_types)
        problems += found
        if not found and id(rule) in cache.versions:
            passed.add(id(rule))
    return problems


def _check_rule(
    rule: Rule, rsrc: YamlSource, rpath: Path_, s: Settings, channel_types: dict[str, str]
) -> list[Problem]:
    """What one rule refers to that the settings do not have, or writes that cannot work."""
    problems: list[Problem] = []
    kinds: list[str] = []
    for wpath, w in rule.when.walk_paths((*rpath, "when")):
        kind = w.kind
        kinds.append(kind)
        if kind in ("all", "any", "not"):
            continue
        if kind == "expr":
            try:
                compile_expr(w.expr or "")
            except ExprError as e:
                col = f" (column {e.column})" if getattr(e, "column", None) else ""
                problems.append(rsrc.problem((*wpath, "expr"), f"{e}{col}"))
            continue
        cond = w.condition
        if isinstance(cond, CrossesCond) and cond.expr is not None:
            try:
                compile_expr(cond.expr, condition=False)
            except ExprError as e:
                col = f" (column {e.column})" if getattr(e, "column", None) else ""
                problems.append(rsrc.problem((*wpath, kind, "expr"), f"{e}{col}"))
        parts: list[tuple[Any, Path_]] = [(cond, (*wpath, kind))]
        if getattr(cond, "spread", None) is not None:
            parts.append((cond.spread, (*wpath, kind, "spread")))  # type: ignore[union-attr]
        for part, at in parts:
            for attr in ("symbols", "a", "b"):
                ref = getattr(part, attr, None)
                refs = [] if ref is None else [ref] if isinstance(ref, str) else ref
                for r_i, r in enumerate(refs):
                    where: Path_ = (*at, attr)
                    if isinstance(ref, list):
                        where = (*where, r_i)
                    msg = _check_ref(r, s.groups, allow_group=attr == "symbols")
                    if msg:
                        problems.append(rsrc.problem(where, msg))
    named: list[tuple[Path_, str]] = [
        ((*rpath, "channels", i), ch) for i, ch in enumerate(rule.channels)
    ]
    if rule.escalate is not None:
        named += [((*rpath, "escalate", "to", i), ch) for i, ch in enumerate(rule.escalate.to)]
    for where, ch in named:
        if ch not in s.channels:
            known = ", ".join(sorted(s.channels)) or "(none configured)"
            problems.append(
                rsrc.problem(
                    where,
                    f"unknown channel {ch!r}{_did_you_mean(ch, s.channels)}; "
                    f"channels in alerts.yaml: {known}",
                )
            )
    for attr in ("message", "resolved_message"):
        template = getattr(rule, attr)
        msg = check_template(template, kinds) if template is not None else None
        if msg:
            problems.append(rsrc.problem((*rpath, attr), msg))
    for key, msg in check_messages(rule.messages, channel_types):
        problems.append(rsrc.problem((*rpath, "messages", key), msg))
    return problems


def _check_routes(
    main: YamlSource, route: RouteConfig, path: Path_, channels: dict[str, ChannelConfig]
) -> list[Problem]:
    problems = []
    named: list[tuple[Path_, str]] = [
        ((*path, "channels", i), ch) for i, ch in enumerate(route.channels or [])
    ]
    if route.escalate is not None:
        named += [((*path, "escalate", "to", i), ch) for i, ch in enumerate(route.escalate.to)]
    for where, ch in named:
        if ch not in channels:
            problems.append(
                main.problem(where, f"unknown channel {ch!r}{_did_you_mean(ch, channels)}")
            )
    for i, child in enumerate(route.routes):
        problems += _check_routes(main, child, (*path, "routes", i), channels)
    return problems


def _bad_symbol(sym: str) -> str:
    return f"{sym!r} is not a ticker symbol; write it upper-case, e.g. NVDA or BRK.B"


def _check_ref(ref: str, groups: dict[str, list[str]], *, allow_group: bool) -> str | None:
    if ref in groups:
        return None if allow_group else f"{ref!r} is a group; this field takes one symbol"
    if SYMBOL.match(ref):
        return None
    if GROUP.match(ref):
        known = ", ".join(sorted(groups)) or "(none defined)"
        return f"unknown group {ref!r}{_did_you_mean(ref, groups)}; groups in alerts.yaml: {known}"
    return _bad_symbol(ref)
