"""`tickwatch backtest`: the command. Arguments in, a table on the terminal and files out.

    tickwatch backtest                                # the config's replay files, every rule
    tickwatch backtest --data bars.parquet news.csv --from 2026-03-16 --to 2026-04-15
    tickwatch backtest --rule xmag-mags-ytd-spread-compresses --out var/backtest
    tickwatch backtest --rules rules/edited.yaml --compare rules/rotation.yaml
    tickwatch backtest --source alpaca --from 2026-01-01 --to 2026-04-01

Exit codes: 0 done, 2 the config or the data cannot be used (the message says why).
"""

from __future__ import annotations

import argparse
import datetime as dt
import typing
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from daemon.backtest.compare import compare, render_compare
from daemon.backtest.data import DataError, History, open_history
from daemon.backtest.model import BacktestResult
from daemon.backtest.run import BacktestError, run_backtest
from daemon.config import Config, ConfigError, load_config
from daemon.events import NEW_YORK

__all__ = ["add_parser", "main"]

EXIT_OK, EXIT_BAD = 0, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "backtest",
        help="try rules on history with the daemon's semantics; nothing is sent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="alerts.yaml")
    p.add_argument("--data", nargs="+", type=Path, metavar="PATH",
                   help="CSV/CSV.gz/Parquet of trades, 1-minute bars or headlines "
                        "(default: the config's replay sources' files)")  # fmt: skip
    p.add_argument("--source", choices=["alpaca", "polygon"],
                   help="fetch history from this provider (cached in var/history/)")  # fmt: skip
    p.add_argument("--source-url", metavar="URL",
                   help="the provider's REST URL (a proxy; default: an alpaca_backfill "
                        "source's base_url, else the provider's own)")  # fmt: skip
    p.add_argument("--from", dest="start", type=_day, metavar="DATE",
                   help="first day judged (New York); earlier rows only warm rules")  # fmt: skip
    p.add_argument("--to", dest="end", type=_day, metavar="DATE",
                   help="first day NOT judged (New York): --from 2026-03-01 --to 2026-04-01 "
                        "is March")  # fmt: skip
    p.add_argument("--rules", nargs="+", metavar="FILE|DIR",
                   help="rule files to try instead of the config's")  # fmt: skip
    p.add_argument("--rule", action="append", metavar="NAME", help="only this rule (repeatable)")
    p.add_argument("--compare", nargs="+", metavar="FILE|DIR",
                   help="other rule files: what changes from them to the rules tried")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("var/backtest"),
                   help="where alerts.csv, alerts.json, the charts and report.html go")  # fmt: skip
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts and report")
    p.set_defaults(func=main)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _ms(day: dt.date | None) -> int | None:
    if day is None:
        return None
    return int(dt.datetime.combine(day, dt.time(0), NEW_YORK).timestamp() * 1000)


def _rule_globs(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        path = Path(p).resolve()
        out.append(str(path / "*.yaml") if path.is_dir() else str(path))
    return out


def _load(path: str, rules: list[str] | None) -> Config:
    return load_config(path, include=_rule_globs(rules) if rules else None)


def _default_data(cfg: Config) -> list[Path]:
    out = []
    for src in cfg.settings.sources:
        if src.type == "replay":
            for attr in ("ticks", "news"):
                p = getattr(src, attr, None)
                if p is not None:
                    out.append(cfg.base_dir / p)
    return out


def main(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    if not console.is_terminal:  # a file or a pipe: wide enough for the table's columns
        console = Console(stderr=False, width=160)
    err = Console(stderr=True)
    try:
        cfg = _load(args.config, args.rules)
    except ConfigError as e:
        err.print(str(e), markup=False, highlight=False)
        return EXIT_BAD
    except OSError as e:
        err.print(f"{args.config}: cannot read the config: {e.strerror}", markup=False)
        return EXIT_BAD
    start_ms, end_ms = _ms(args.start), _ms(args.end)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        err.print("--to must be after --from (--to is the first day not judged)")
        return EXIT_BAD
    try:
        paths = _data_paths(args, cfg, console, start_ms, end_ms)
        result = _run(cfg, paths, args.rule, start_ms, end_ms, console)
        other = None
        if args.compare:
            other_cfg = _load(args.config, args.compare)
            other = _run(other_cfg, paths, args.rule, start_ms, end_ms, console)
    except ConfigError as e:
        err.print(str(e), markup=False, highlight=False)
        return EXIT_BAD
    except (DataError, BacktestError) as e:
        err.print(f"tickwatch backtest: {e}", markup=False, highlight=False)
        return EXIT_BAD
    from daemon.backtest.files import write_alerts_csv, write_alerts_json
    from daemon.backtest.table import render_table

    render_table(result, console)
    if other is not None:
        render_compare(compare(other, result), console)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_alerts_csv(result, out / "alerts.csv")
    write_alerts_json(result, out / "alerts.json")
    written = [out / "alerts.csv", out / "alerts.json"]
    if not args.no_charts:
        from daemon.backtest.charts import render_charts
        from daemon.backtest.html import write_report

        with console.status("drawing charts ..."):
            charts = render_charts(result, out)
            written.append(write_report(result, out, charts))
    console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
    return EXIT_OK


def _data_paths(
    args: argparse.Namespace, cfg: Config, console: Console, start_ms: int | None,
    end_ms: int | None,
) -> list[Path]:  # fmt: skip
    if args.source:
        return _fetch(args.source, cfg, console, start_ms, end_ms, args.source_url)
    if args.data:
        return list(args.data)
    paths = _default_data(cfg)
    if not paths:
        raise DataError(
            f"{args.config} has no replay source to read history from: pass --data FILE ... "
            "(CSV or Parquet) or --source alpaca|polygon"
        )
    return paths


def _fetch(
    provider: str,
    cfg: Config,
    console: Console,
    start_ms: int | None,
    end_ms: int | None,
    url: str | None,
) -> list[Path]:
    import asyncio

    from daemon.backtest.fetch import FetchError, ProviderName, console_progress, fetch_history

    if start_ms is None or end_ms is None:
        raise DataError("--source needs --from and --to: the range of history to fetch")
    start = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    end = dt.datetime.fromtimestamp(end_ms / 1000, dt.UTC)
    cache = cfg.base_dir / "var" / "history"
    # the daemon's own backfill says where Alpaca is and which feed the plan has
    backfill = next((x for x in cfg.settings.sources if x.type == "alpaca_backfill"), None)
    feed = "iex"
    if provider == "alpaca" and backfill is not None:
        url = url or getattr(backfill, "base_url", None)
        feed = getattr(backfill, "feed", feed)
    try:
        with console_progress(console) as progress:
            got = asyncio.run(
                fetch_history(
                    typing.cast(ProviderName, provider),
                    sorted(cfg.universe),
                    start,
                    end,
                    cache,
                    base_url=url,
                    feed=feed,
                    progress=progress,
                )
            )
    except FetchError as e:
        raise DataError(str(e)) from e
    if got.symbols_without_data:
        console.print(f"no {provider} data for: {', '.join(got.symbols_without_data)}")
    return [*got.bars, *got.news]


def _run(
    cfg: Config,
    paths: list[Path],
    rules: list[str] | None,
    start_ms: int | None,
    end_ms: int | None,
    console: Console,
) -> BacktestResult:
    history: History = open_history(paths, start_ms=start_ms, end_ms=end_ms,
                                    symbols=cfg.universe)  # fmt: skip
    total = history.total_rows
    with Progress(
        TextColumn("backtest"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeRemainingColumn(), console=console, transient=True,
        disable=not console.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("rows", total=total)
        result = run_backtest(cfg, history, rules=rules, start_ms=start_ms, end_ms=end_ms,
                              on_progress=lambda n: progress.update(task, completed=n))  # fmt: skip
    if history.refused:
        console.print(f"[yellow]{history.refused_count} row(s) refused[/yellow]:")
        for line in history.refused[:10]:
            console.print(f"  {line}", markup=False, highlight=False)
        if history.refused_count > 10:
            console.print(f"  ... and {history.refused_count - 10} more")
    return result
