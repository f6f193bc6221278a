"""`tickwatch run`, `check`, `test` and `schema`.

Exit codes: 0 ok, 1 the daemon failed while running, 2 the configuration is invalid (nothing
was started), 3 the daemon could not start or a source cannot run (Redis unreachable, a wrong
API key, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from pydantic import SecretStr

from daemon import __version__
from daemon.config import Config, ConfigError, load_config

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_STARTUP = 3


def _secrets(cfg: Config) -> list[str]:
    out = []
    for ch in cfg.settings.channels.values():
        for _, value in ch:
            if isinstance(value, SecretStr) and value.get_secret_value():
                out.append(value.get_secret_value())
    return out


def _load(path: str, *, starting: bool) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        if starting:
            print("tickwatch did not start: fix the problems above (`tickwatch check` re-checks).",
                  file=sys.stderr)  # fmt: skip
        return None
    except OSError as e:
        print(f"{path}: cannot read the config: {e.strerror}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.notify.registry import BUILTIN_NOTIFIERS

    s = cfg.settings
    print(f"{args.config}: OK")
    print(f"  rules:    {len(cfg.rules)} in {len(cfg.files)} file(s): {', '.join(cfg.files)}")
    print(f"  symbols:  {len(cfg.universe)} ({', '.join(sorted(cfg.universe))})")
    print(f"  sources:  {', '.join(f'{x.name} ({x.type})' for x in s.sources) or 'none'}")
    for name, ch in s.channels.items():
        notifier = BUILTIN_NOTIFIERS[ch.type](name, ch)
        reason = notifier.disabled_reason(cfg.env_vars_of_channel(name))
        print(f"  channel   {name} ({ch.type}): {'off, ' + reason if reason else 'on'}")
    where = f"embedded, data in {s.redis.data_dir}" if not s.redis.url else "external"
    print(f"  redis:    {where}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config, starting=True)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.app import Daemon, StartupError
    from daemon.logs import setup_logging

    setup_logging(args.log_level or cfg.settings.log_level, _secrets(cfg))

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        daemon = Daemon(cfg)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(daemon.reload()))
        try:
            return await daemon.run_forever(stop)
        except StartupError as e:
            print(f"tickwatch: {e}", file=sys.stderr)
            return EXIT_STARTUP

    return asyncio.run(main())


def cmd_schema(args: argparse.Namespace) -> int:
    from pathlib import Path

    from daemon.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from daemon.rules.testing import main as run_rule_tests

    return run_rule_tests(args.paths)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tickwatch", description="Real-time market alerting daemon.")
    p.add_argument("--version", action="version", version=f"tickwatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon until SIGINT/SIGTERM")
    run.add_argument("--config", default="alerts.yaml")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="validate alerts.yaml and every rule file; exit 0 or 2")
    check.add_argument("--config", default="alerts.yaml")
    check.set_defaults(func=cmd_check)
    test = sub.add_parser("test", help="run rule unit tests (rules/tests/*.yaml); exit 0, 1 or 2")
    test.add_argument("paths", nargs="+", help="test files or directories")
    test.set_defaults(func=cmd_test)
    schema = sub.add_parser("schema", help="write JSON Schemas for alerts.yaml and rule files")
    schema.add_argument("--out", default="schema", help="directory (default: ./schema)")
    schema.set_defaults(func=cmd_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
