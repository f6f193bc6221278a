"""The names of `daemon.notify` the other stages use, imported lazily on first use.

For type checkers; at run time `__init__.py` reads this file (lazy_loader.attach_stub)."""

from . import admin as admin
from .admin import open_redis as open_redis
from .base import ChannelConfig as ChannelConfig
from .base import Notification as Notification
from .base import Notifier as Notifier
from .channel_templates import check_messages as check_messages
from .channel_worker import STOP_GRACE_S as STOP_GRACE_S
from .console import ConsoleConfig as ConsoleConfig
from .console import ConsoleNotifier as ConsoleNotifier
from .delivery import Delivery as Delivery
from .delivery_settings import DeliveryOptions as DeliveryOptions
from .delivery_settings import DeliverySettings as DeliverySettings
from .dispatch import Dispatcher as Dispatcher
from .dispatch import Routed as Routed
from .grouping import Group as Group
from .inhibit import Inhibitor as Inhibitor
from .inhibit import InhibitRule as InhibitRule
from .preview import render_rule as render_rule
from .preview import send_test_notice as send_test_notice
from .registry import NOTIFIERS as NOTIFIERS
from .registry import make_notifier as make_notifier
from .registry import notifier_class as notifier_class
from .retry import RetryPolicy as RetryPolicy
from .route_tree import RouteConfig as RouteConfig
from .route_tree import compile_routes as compile_routes
from .silence_book import SilenceStore as SilenceStore

__all__ = [
    "NOTIFIERS",
    "STOP_GRACE_S",
    "ChannelConfig",
    "ConsoleConfig",
    "ConsoleNotifier",
    "Delivery",
    "DeliveryOptions",
    "DeliverySettings",
    "Dispatcher",
    "Group",
    "InhibitRule",
    "Inhibitor",
    "Notification",
    "Notifier",
    "RetryPolicy",
    "RouteConfig",
    "Routed",
    "SilenceStore",
    "admin",
    "check_messages",
    "compile_routes",
    "make_notifier",
    "notifier_class",
    "open_redis",
    "render_rule",
    "send_test_notice",
]
