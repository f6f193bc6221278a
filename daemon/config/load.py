"""`load_config`: reads alerts.yaml, its rule files and calendar CSVs into a checked `Config`."""

from __future__ import annotations

import csv
import glob
import logging
import typing
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from daemon.config.checks import _cross_check
from daemon.config.errors import ConfigError, translate
from daemon.config.models import Config, LoadedRule, Settings, settings_model_for
from daemon.events import EarningsEvent
from daemon.rulecache import RuleFileCache
from daemon.rules import RuleFile
from daemon.sources import load_anchors_csv, load_earnings_csv
from daemon.yamlsrc import Path_, Problem, YamlSource, load_yaml

log = logging.getLogger("tickwatch.config")


#: Starts the message of a problem that is tickwatch's fault, not the file's (see load_config).
INTERNAL_ERROR = "internal error"


def load_config(
    path: str | Path,
    env: typing.Mapping[str, str] | None = None,
    *,
    cache: RuleFileCache | None = None,
    include: typing.Sequence[str] | None = None,
) -> Config:
    """Parse, validate and cross-check alerts.yaml and its rule files.

    Returns a `Config` or raises `ConfigError`, whatever the files hold: a running daemon keeps
    its rules on a `ConfigError`, and `tickwatch check` prints it. An exception no check turned
    into a problem is a tickwatch bug; it too becomes a `ConfigError` (and its traceback is
    logged) rather than stopping the daemon that was reloading.

    `include` (rule files or globs, relative to alerts.yaml or absolute) stands for the
    config's own `include:` and rules: `tickwatch backtest --rules` tries other rule files
    with the same settings.
    """
    try:
        return _load_config(
            Path(path), env, cache if cache is not None else RuleFileCache(), include
        )
    except ConfigError:
        raise
    except Exception as e:
        log.error("checking %s failed unexpectedly", path, exc_info=e)
        raise ConfigError(
            [
                Problem(
                    str(path),
                    0,
                    "",
                    f"{INTERNAL_ERROR} while checking the config ({type(e).__name__}: {e}); "
                    "nothing was loaded. Please report it as a tickwatch bug, with the files",
                )
            ]
        ) from e


def _load_config(
    path: Path,
    env: typing.Mapping[str, str] | None,
    cache: RuleFileCache,
    include: typing.Sequence[str] | None = None,
) -> Config:
    base = path.parent
    problems: list[Problem] = []
    src, found = load_yaml(path, _display(path, base), env)
    problems += found
    if src.data is None:
        raise ConfigError(problems)
    if not isinstance(src.data, dict):
        raise ConfigError([*problems, src.problem((), "expected a mapping of settings")])
    settings: Settings | None = None
    model = settings_model_for(src.data)
    try:
        settings = model.model_validate(src.data)
    except ValidationError as e:
        problems += translate(e, src, model)

    # Rule files are read even when alerts.yaml has problems, so one run reports everything.
    includes = settings.include if settings else _raw_includes(src.data)
    if include is not None:
        includes = list(include)
    loaded: list[LoadedRule] = []
    if settings is not None and include is None:
        for i, rule in enumerate(settings.rules):
            loaded.append(LoadedRule(rule, src.file, src.line_of(("rules", i))))
    sources: dict[str, YamlSource] = {src.file: src}
    # aligned with `loaded`: a rule's path in its file (names may repeat; that is an error)
    rule_paths: list[Path_] = [("rules", i) for i in range(len(loaded))]
    files = [src.file]
    included = {src.file}
    for pattern_i, pattern in enumerate(includes):
        try:
            matches = sorted(glob.glob(str(base / pattern)))
        except (OSError, ValueError) as e:  # a NUL or an over-long pattern, an unreadable dir
            problems.append(src.problem(("include", pattern_i), f"cannot list {pattern!r}: {e}"))
            continue
        if not matches:
            problems.append(src.problem(("include", pattern_i), f"no file matches {pattern!r}"))
        for file in matches:
            display = _display(Path(file), base)
            if display in included:
                continue  # matched by an earlier pattern too: load each file once
            included.add(display)
            hit = cache.get(display, Path(file))
            if hit is not None:
                fsrc, rf = hit
            else:
                stamp = cache.stamp(Path(file))
                fsrc, found = load_yaml(Path(file), display, env)
                problems += found
                if fsrc.data is None or found:
                    continue
                try:
                    rf = RuleFile.model_validate(cache.reusable(display, fsrc.data))
                except ValidationError as e:
                    problems += translate(e, fsrc, RuleFile)
                    continue
                cache.put(display, stamp, fsrc, rf)
            sources[fsrc.file] = fsrc
            files.append(fsrc.file)
            for i, rule in enumerate(rf.rules):
                loaded.append(LoadedRule(rule, fsrc.file, fsrc.line_of(("rules", i))))
                rule_paths.append(("rules", i))
    cache.keep_only(included)
    if settings is None:
        raise ConfigError(problems)
    cfg = Config(settings, loaded, base, files, src.env_vars, path=path, env=env, file_cache=cache)

    if settings.calendar.earnings is not None:
        cal = base / settings.calendar.earnings
        no_events: list[EarningsEvent] = []
        cfg.earnings, found = _read_csv(
            load_earnings_csv, cal, base, "the earnings calendar", no_events
        )
        problems += found
    if settings.anchors_csv is not None:
        anchors_path = base / settings.anchors_csv
        no_anchors: dict[tuple[str, date], float] = {}
        cfg.anchors, found = _read_csv(
            load_anchors_csv, anchors_path, base, "the anchor prices", no_anchors
        )
        problems += found
    for sym, by_day in settings.anchors.items():  # written in alerts.yaml: wins over the CSV
        for day, price in by_day.items():
            cfg.anchors[(sym, day)] = price
    problems += _cross_check(cfg, src, sources, rule_paths)
    if problems:
        raise ConfigError(problems)
    return cfg


def _raw_includes(data: dict[str, Any]) -> list[str]:
    inc = data.get("include")
    return [p for p in inc if isinstance(p, str)] if isinstance(inc, list) else []


def _display(path: Path, base: Path) -> str:
    """Paths in messages are relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # elsewhere; a gone cwd; a symlink loop
        return str(path)


_T = typing.TypeVar("_T")


def _read_csv(
    loader: typing.Callable[[Path, str], tuple[_T, list[Problem]]],
    path: Path,
    base: Path,
    what: str,
    empty: _T,
) -> tuple[_T, list[Problem]]:
    """A calendar CSV named in alerts.yaml, with what its loader leaves uncaught as a problem."""
    display = _display(path, base)
    try:
        return loader(path, display)
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1 if isinstance(e.object, bytes) else 0
        msg = (
            f"cannot read {what}: not UTF-8 text (byte 0x{e.object[e.start]:02X}): save it as UTF-8"
        )
        return empty, [Problem(display, line, "", msg)]
    except (OSError, ValueError, csv.Error) as e:  # a NUL in the path, a NUL in the file
        return empty, [Problem(display, 0, "", f"cannot read {what}: {e}")]
