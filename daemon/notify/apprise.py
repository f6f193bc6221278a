"""Apprise channel: one config entry reaches any of the ~150 services Apprise speaks.

For e-mail, PagerDuty, Opsgenie, Teams, Discord, ntfy and the rest, without a module of ours for
each. Apprise URLs embed credentials (`mailtos://user:pass@host`, `pd://key`), so `urls` are
secrets: they come from `${ENV}` and never appear in a log or an error; only the service names do.

Apprise is an optional extra (`pip install 'tickwatch[apprise]'`). Without it, or with a URL
Apprise cannot parse, the channel is switched off with the reason, never a crash. Each URL is its
own Apprise object, so a retry after a partial failure notifies only the services still owed
(as SMS does per recipient). Apprise cannot tell a bad credential from an outage, so a failed
service is retryable; the worker's time budget (`give_up_after`) and dead letters bound it.

No `Retry-After` here: Apprise reports only whether each service took the message (a bool and
its log lines), never the HTTP status or headers, so a service's rate limit cannot reach the
worker. (A few of its plugins, Discord and Matrix among them, wait out their own service's rate
limit inside the notify call.) A failure is retried with the worker's backoff and jitter.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, SecretStr

from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification, Receipt
from daemon.notify.wording import alert_line, compare_text, format_time_ny, order_alerts


def _import_apprise() -> Any:
    """The apprise module, or None: it is an optional extra, and the channel is off without it."""
    try:
        return importlib.import_module("apprise")
    except ImportError:
        return None


_apprise: Any = _import_apprise()

__all__ = ["AppriseConfig", "AppriseNotifier", "apprise_available"]

INSTALL_HINT: Final = "pip install 'tickwatch[apprise]'"
_REMEMBER: Final = 1024  # notification keys whose per-service progress is kept for retries
_GROUP_LINES: Final = 20


def apprise_available() -> bool:
    return _apprise is not None


class AppriseConfig(ChannelConfig):
    """`channels.<name>` with `type: apprise` in alerts.yaml."""

    type: Literal["apprise"]
    urls: list[SecretStr] = Field(
        min_length=1, description="Apprise service URLs, from ${ENV}: they embed credentials"
    )
    timeout: float = Field(default=15, gt=0, le=120)


def _url_pieces(url: str) -> list[str]:
    """The parts of a URL that may be a credential on their own (user, password, path, query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    pieces = [parts.username or "", parts.password or ""]
    pieces += [unquote(p) for p in parts.path.split("/")]
    pieces += [v for _, v in parse_qsl(parts.query)]
    if "://" in url:  # apprise often puts a token where a host would be (pd://KEY)
        pieces.append(url.split("://", 1)[1].split("/", 1)[0].split("@")[-1])
    return [p for p in pieces if len(p) >= 6]


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] + "://" if "://" in url else "(no scheme)"


class AppriseNotifier(Notifier):
    """Sends each notification, as a title and a plain-text body, to every Apprise URL."""

    kind: ClassVar[str] = "apprise"
    config_model: ClassVar[type[ChannelConfig]] = AppriseConfig
    body_maxlen: ClassVar[int] = 4000
    title_maxlen: ClassVar[int] = 250
    config: AppriseConfig

    def __init__(self, name: str, config: AppriseConfig):
        if not isinstance(config, AppriseConfig):
            raise TypeError(f"AppriseNotifier needs an AppriseConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._services: list[Any] | None = None  # one apprise.Apprise per URL
        self._done: OrderedDict[str, set[int]] = OrderedDict()

    def secret_values(self) -> list[str]:
        out = super().secret_values()
        for url in list(out):
            out += _url_pieces(url)
        return out

    def disabled_reason(self, env_vars: Mapping[str, str] | None = None) -> str | None:
        reason = super().disabled_reason(env_vars)
        if reason is not None:
            return reason
        if _apprise is None:
            return f"the apprise package is not installed; {INSTALL_HINT}"
        bad = [
            f"urls[{i}] ({_scheme(u.get_secret_value())})"
            for i, u in enumerate(self.config.urls)
            if _apprise.Apprise.instantiate(u.get_secret_value()) is None
        ]
        if bad:
            return f"{', '.join(bad)} is not a URL Apprise understands; see its wiki for the format"
        return None

    def _get_services(self) -> list[Any]:
        if self._services is None:
            if _apprise is None:
                raise DeliveryError(
                    f"apprise channel {self.name!r}: the apprise package is not installed; "
                    f"{INSTALL_HINT}",
                    retryable=False,
                )
            # Apprise and urllib3 (under it) log request URLs, tokens in their paths, below
            # WARNING; keep them there unless someone chose a level on purpose.
            for lib in ("apprise", "urllib3"):
                lib_log = logging.getLogger(lib)
                if lib_log.level == logging.NOTSET:
                    lib_log.setLevel(logging.WARNING)
            services = []
            for u in self.config.urls:
                ap = _apprise.Apprise()
                ap.add(u.get_secret_value())
                services.append(ap)
            self._services = services
        return self._services

    def body(self, n: Notification) -> str:
        """Plain text: the summary, then value, time and alert id; or a line per alert."""
        if n.kind == "notice" or not n.alerts:
            return n.text
        if n.kind in ("group", "digest") or len(n.alerts) > 1:
            ordered = order_alerts(n.alerts)
            lines = [alert_line(a) for a in ordered[:_GROUP_LINES]]
            if len(ordered) > _GROUP_LINES:
                lines.append(f"+{len(ordered) - _GROUP_LINES} more")
            return self.truncate("\n".join(lines))
        a = n.alert
        lines = [a.summary.strip()] if a.summary.strip() else []
        cmp = compare_text(a)
        if cmp:
            lines.append(f"Value: {cmp}")
        lines += [f"Time: {format_time_ny(a)}", f"Alert: {a.id}"]
        return self.truncate("\n".join(lines))

    def _notify_type(self, n: Notification) -> str:
        firing = [a for a in n.alerts if a.state == "firing"]
        if n.kind == "notice" or not n.alerts:
            return "info"
        if not firing:
            return "success"
        worst = order_alerts(firing)[0].severity
        return {"critical": "failure", "warning": "warning"}.get(worst, "info")

    def preview(self, n: Notification) -> str:
        n = self.prepare(n)
        return f"[{self._notify_type(n)}] {self.title(n)}\n{self.body(n)}"

    async def send(self, n: Notification) -> Receipt | None:
        services = self._get_services()
        title, body, notify_type = self.title(n), self.body(n), self._notify_type(n)
        done = self._done.setdefault(n.key, set())
        self._done.move_to_end(n.key)
        while len(self._done) > _REMEMBER:
            self._done.popitem(last=False)
        owed = [i for i in range(len(services)) if i not in done]

        async def one(i: int) -> str | None:
            try:
                async with asyncio.timeout(self.config.timeout + 1):
                    result = await services[i].async_notify(
                        body=body, title=title, notify_type=notify_type, timeout=self.config.timeout
                    )
            except TimeoutError:
                return "timed out"
            if result:
                done.add(i)
                return None
            return _failure_text(result)

        outcomes = await asyncio.gather(*(one(i) for i in owed))
        failed = [(i, why) for i, why in zip(owed, outcomes, strict=True) if why is not None]
        if failed:
            detail = "; ".join(
                f"urls[{i}] ({_scheme(self.config.urls[i].get_secret_value())}): {why}"
                for i, why in failed
            )
            raise DeliveryError(
                f"apprise channel {self.name!r}: {len(failed)} of {len(services)} service(s) "
                f"failed: {detail}",
                retryable=True,
            )
        return None

    async def aclose(self) -> None:
        self._services = None


def _failure_text(result: Any) -> str:
    """What Apprise said went wrong: the service and its last warning (privacy-safe names)."""
    reasons: list[str] = []
    for service in getattr(result, "results", ()) or ():
        if service:
            continue
        messages = [
            str(entry.message)
            for entry in service.logs()
            if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL")
        ]
        last = messages[-1] if messages else str(getattr(service, "status", "failed")).lower()
        reasons.append(f"{service.name}: {last}")
    return "; ".join(reasons) or "the service reported a failure"
