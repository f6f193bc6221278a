"""`tickwatch run`, `check`, `test`, `schema`, and for channels `notify` (a test message) and
`render` (preview a rule's message on each of its channels).

Exit codes: 0 ok, 1 the daemon failed while running, 2 the configuration is invalid (nothing
was started), 3 the daemon could not start or a source cannot run (Redis unreachable, a wrong
API key, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import sys
from collections.abc import Sequence

from daemon import __version__
from daemon.config import Config, ConfigError, load_config

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_STARTUP = 3


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
    # file and symbol names come from the files: a terminal that cannot show them gets escapes
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.notify import make_notifier

    s = cfg.settings
    print(f"{args.config}: OK")
    print(f"  rules:    {len(cfg.rules)} in {len(cfg.files)} file(s): {', '.join(cfg.files)}")
    print(f"  symbols:  {len(cfg.universe)} ({', '.join(sorted(cfg.universe))})")
    print(f"  sources:  {', '.join(f'{x.name} ({x.type})' for x in s.sources) or 'none'}")
    for name, ch in s.channels.items():
        notifier = make_notifier(name, ch)
        reason = notifier.disabled_reason(cfg.env_vars_of_channel(name))
        print(f"  channel   {name} ({ch.type}): {'off, ' + reason if reason else 'on'}")
    where = f"embedded, data in {s.redis.data_dir}" if not s.redis.url else "external"
    print(f"  redis:    {where}")
    http = cfg.settings.http
    print(f"  http:     /healthz, /readyz, /metrics and the desk's webhooks on {http.shown}"
          if http.enabled else "  http:     off")  # fmt: skip
    print("  next:     `tickwatch test rules/tests` runs the rules' own tests; `tickwatch "
          "backtest --data FILE` tries them on history, and `--compare OLD_RULES` shows what "
          "an edit changes (alerts added, removed, moved) before it goes live")  # fmt: skip
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # Until the event loop's handlers take over, SIGTERM stops us as Ctrl-C does: quietly,
    # nothing having started yet (not a KeyboardInterrupt traceback, not death by signal).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 0


def _run(args: argparse.Namespace) -> int:
    cfg = _load(args.config, starting=True)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.app import Daemon, StartupError
    from daemon.logs import setup_logging

    setup_logging(args.log_level or cfg.settings.log_level, cfg.secret_values())

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        daemon = Daemon(cfg, instance=args.instance or f"{socket.gethostname()}:{os.getpid()}")
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(daemon.reload()))
        try:
            return await daemon.run_forever(stop, tune_gc=True)
        except StartupError as e:
            print(f"tickwatch: {e}", file=sys.stderr)
            return EXIT_STARTUP

    return asyncio.run(main())


def cmd_schema(args: argparse.Namespace) -> int:
    from pathlib import Path

    from daemon.json_schemas import write_schemas

    for path in write_schemas(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from daemon.ruletests import main as run_rule_tests

    return run_rule_tests(args.paths)


def cmd_silence(args: argparse.Namespace) -> int:
    from daemon.notify import admin

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    try:
        if args.action == "add":
            print(asyncio.run(admin.silence_add(
                cfg, args.matchers, duration=args.duration, author=args.author, reason=args.reason
            )))  # fmt: skip
        elif args.action == "list":
            print("\n".join(asyncio.run(admin.silence_list(cfg, all_=args.all))) or "no silences")
        else:
            done = asyncio.run(admin.silence_expire(cfg, args.id))
            if done is None:
                print(f"no silence {args.id!r} (see tickwatch silence list --all)", file=sys.stderr)
                return 1
            print(done)
    except ValueError as e:
        print(f"tickwatch silence: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_deadletter(args: argparse.Namespace) -> int:
    from daemon.notify import admin

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    if args.action == "list":
        print("\n".join(asyncio.run(admin.deadletter_list(cfg, args.count))) or "no dead letters")
        return 0
    if not args.ids and not args.all:
        print("give dead-letter ids (tickwatch deadletter list) or --all", file=sys.stderr)
        return EXIT_CONFIG
    lines = asyncio.run(admin.deadletter_retry(cfg, args.ids, all_=args.all))
    print("\n".join(lines) or "no dead letters")
    return 1 if any("cannot" in x or "no such" in x for x in lines) else 0


def cmd_ack(args: argparse.Namespace) -> int:
    """`tickwatch ack REF` and `tickwatch snooze REF --for 1h`: the desk's word on one alert."""
    from daemon.durations import parse_duration
    from daemon.notify import Desk, NoSuchAlert, open_redis
    from daemon.store import Keys

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG

    async def act() -> str:
        async with open_redis(cfg) as redis:
            desk = Desk(redis, Keys(cfg.settings.redis.prefix))
            if args.command == "ack":
                a = await desk.ack(args.alert, by=args.by, via="cli")
                return f"acknowledged {a.alert_key} ({a.by}): its escalation stops"
            for_ms = int(parse_duration(args.duration).total_seconds() * 1000)
            s = await desk.snooze(args.alert, for_ms=for_ms, by=args.by, via="cli")
            return f"snoozed as silence {s.id} for {args.duration}: {' '.join(s.matchers)}"

    try:
        print(asyncio.run(act()))
    except NoSuchAlert as e:
        print(f"tickwatch {args.command}: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"tickwatch {args.command}: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """`tickwatch alerts`: what is firing and pending now, from the running daemon's API."""
    import json
    import urllib.error
    import urllib.request
    from datetime import datetime

    from daemon.events import NEW_YORK

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    http = cfg.settings.http
    if not http.enabled:
        print("tickwatch alerts: http is off in alerts.yaml (http.listen: off)", file=sys.stderr)
        return EXIT_CONFIG
    host, port = http.address
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{port}/api/alerts"
    request = urllib.request.Request(url)
    if http.token is not None:
        request.add_header("Authorization", f"Bearer {http.token.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            rows = json.load(r)["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        print(f"tickwatch alerts: no daemon answers at {url} ({e}); is `tickwatch run` "
              "running with this alerts.yaml?", file=sys.stderr)  # fmt: skip
        return 1
    if not rows:
        print("nothing firing or pending")
    for a in rows:
        since = datetime.fromtimestamp(a["since_ms"] / 1000, NEW_YORK).strftime("%m-%d %H:%M ET")
        number = f"#{a['number']}" if a.get("number") else "-"
        value = "" if a.get("value") is None else f"{a['value']:.4g}"
        if a.get("threshold") is not None:
            value += f" {a.get('comparison', '')} {a['threshold']:g}"
        ack = a.get("ack")
        esc = a.get("escalation")
        who = (f"acked by {ack['by']}" if ack else
               "escalating" if esc else "not acked" if a["state"] == "firing" else "")  # fmt: skip
        print(f"{number:>4}  {a['state'].upper():<7}  {a['severity']:<8}  {a['key']}  {value}  "
              f"since {since}  {who}".rstrip())  # fmt: skip
    return 0


def cmd_routes(args: argparse.Namespace) -> int:
    from daemon.notify import admin

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    try:
        print("\n".join(asyncio.run(admin.routes_test(cfg, args.labels, at=args.at))))
    except ValueError as e:
        print(f"tickwatch routes test: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.logs import setup_logging
    from daemon.notify import send_test_notice

    setup_logging("CRITICAL", cfg.secret_values())  # the outcome is printed below, once
    try:
        error = asyncio.run(send_test_notice(cfg, args.channel, args.text))
    except ValueError as e:
        print(f"tickwatch notify: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if error is not None:
        print(f"tickwatch notify: {error}", file=sys.stderr)
        return 1
    print(f"sent to {args.channel}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    from daemon.notify import render_rule

    try:
        alert, previews = render_rule(cfg, args.rule, args.state)
    except ValueError as e:
        print(f"tickwatch render: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{alert.rule} {alert.state} (made-up values), summary: {alert.summary}")
    routed = [p.channel for p in previews]
    if routed != list(alert.channels):
        print(f"the route tree sends it to: {', '.join(routed) or 'no channel'} "
              f"(the rule lists: {', '.join(alert.channels)}); "
              "`tickwatch routes test` says why")  # fmt: skip
    for p in previews:
        print(f"\n--- {p.channel} ({p.kind}), from {p.source} ---")
        if p.error:
            print(f"template error, the rule's message is sent instead: {p.error}")
        print(p.text)
    return 1 if any(p.error for p in previews) else 0


def cmd_status(args: argparse.Namespace) -> int:
    from daemon.status import status_lines

    cfg = _load(args.config, starting=False)
    if cfg is None:
        return EXIT_CONFIG
    lines = asyncio.run(status_lines(cfg))
    print("\n".join(lines))
    return 0 if "NOT RUNNING" not in lines[0] else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tickwatch", description="Real-time market alerting daemon.")
    p.add_argument("--version", action="version", version=f"tickwatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the daemon until SIGINT/SIGTERM")
    run.add_argument("--config", default="alerts.yaml")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(func=cmd_run)
    run.add_argument(
        "--instance",
        help="this daemon's name among several on one Redis (default host:pid): one is the "
        "primary, the others stand by and take over within 5 s of it stopping",
    )
    check = sub.add_parser("check", help="validate alerts.yaml and every rule file; exit 0 or 2")
    check.add_argument("--config", default="alerts.yaml")
    check.set_defaults(func=cmd_check)
    test = sub.add_parser("test", help="run rule unit tests (rules/tests/*.yaml); exit 0, 1 or 2")
    test.add_argument("paths", nargs="+", help="test files or directories")
    test.set_defaults(func=cmd_test)
    schema = sub.add_parser("schema", help="write JSON Schemas for alerts.yaml and rule files")
    schema.add_argument("--out", default="schema", help="directory (default: ./schema)")
    schema.set_defaults(func=cmd_schema)
    notify = sub.add_parser("notify", help="send a test notice through a channel; exit 0 or 1")
    notify.add_argument("channel", help="a channel name from alerts.yaml")
    notify.add_argument("text", help="the message")
    notify.add_argument("--config", default="alerts.yaml")
    notify.set_defaults(func=cmd_notify)
    render = sub.add_parser("render", help="preview a rule's message on each of its channels")
    render.add_argument("rule", help="a rule name")
    render.add_argument("--state", choices=["firing", "resolved"], default="firing")
    render.add_argument("--config", default="alerts.yaml")
    render.set_defaults(func=cmd_render)

    from daemon.backtest.command import add_parser as add_backtest

    add_backtest(sub)

    status = sub.add_parser("status", help="heartbeat, feeds, delivery queues, silences")
    status.add_argument("--config", default="alerts.yaml")
    status.set_defaults(func=cmd_status)

    silence = sub.add_parser("silence", help="hold alerts matching labels for a while")
    silence.add_argument("--config", default="alerts.yaml")
    ssub = silence.add_subparsers(dest="action", required=True)
    add = ssub.add_parser("add", help="e.g. silence add symbol=NVDA --for 2h --author ann "
                                      "--reason 'earnings'")  # fmt: skip
    add.add_argument("matchers", nargs="+", help="label=value, label!=value, label=~regex")
    add.add_argument("--for", dest="duration", required=True, help="how long, e.g. 2h")
    add.add_argument("--author", required=True)
    add.add_argument("--reason", required=True)
    lst = ssub.add_parser("list", help="active and pending silences")
    lst.add_argument("--all", action="store_true", help="expired ones too (kept a week)")
    exp = ssub.add_parser("expire", help="end a silence now")
    exp.add_argument("id")
    silence.set_defaults(func=cmd_silence)

    dead = sub.add_parser("deadletter", help="deliveries that failed for good")
    dead.add_argument("--config", default="alerts.yaml")
    dsub = dead.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser("list", help="newest first")
    dl.add_argument("--count", type=int, default=50)
    dr = dsub.add_parser("retry", help="queue them again on their channel")
    dr.add_argument("ids", nargs="*")
    dr.add_argument("--all", action="store_true")
    dead.set_defaults(func=cmd_deadletter)

    alerts = sub.add_parser("alerts", help="what is firing and pending now (the daemon's API)")
    alerts.add_argument("--config", default="alerts.yaml")
    alerts.set_defaults(func=cmd_alerts)

    desk_commands = (
        ("ack", "acknowledge a firing alert: its escalation stops"),
        ("snooze", "hold a firing alert's messages and escalation for a while"),
    )
    for name, what in desk_commands:
        cmd = sub.add_parser(name, help=what)
        cmd.add_argument(
            "alert", help="its key, or part of one firing alert's key (tickwatch status)"
        )
        cmd.add_argument("--by", required=True, help="who says so, e.g. ann@desk")
        if name == "snooze":
            cmd.add_argument(
                "--for", dest="duration", default="1h", help="e.g. 30m, 2h (default 1h)"
            )
        cmd.add_argument("--config", default="alerts.yaml")
        cmd.set_defaults(func=cmd_ack, command=name)

    routes = sub.add_parser("routes", help="where an alert with these labels would go, and why")
    routes.add_argument("--config", default="alerts.yaml")
    rsub = routes.add_subparsers(dest="action", required=True)
    rt = rsub.add_parser("test", help="e.g. routes test rule=spread severity=critical symbol=NVDA")
    rt.add_argument("labels", nargs="*", help="label=value (rule and severity count too)")
    rt.add_argument(
        "--at", help="as if at this New York time, e.g. 2026-03-16T10:00 (default: now)"
    )
    routes.set_defaults(func=cmd_routes)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
