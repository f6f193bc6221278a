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
from .desk import Desk as Desk
from .desk import NoSuchAlert as NoSuchAlert
from .dispatch import Dispatcher as Dispatcher
from .dispatch import Routed as Routed
from .failure import parse_retry_after as parse_retry_after
from .grouping import Group as Group
from .inhibit import Inhibitor as Inhibitor
from .inhibit import InhibitRule as InhibitRule
from .market_context import MarketContext as MarketContext
from .preview import render_rule as render_rule
from .preview import send_test_notice as send_test_notice
from .registry import NOTIFIERS as NOTIFIERS
from .registry import make_notifier as make_notifier
from .registry import notifier_class as notifier_class
from .retry import RetryPolicy as RetryPolicy
from .route_tree import RouteConfig as RouteConfig
from .route_tree import compile_routes as compile_routes
from .silence_book import SilenceStore as SilenceStore
from .slack_actions import parse_click as parse_click
from .slack_clicks import act_on_click as act_on_click
from .slack_clicks import answer_click as answer_click
from .sms import SmsConfig as SmsConfig
from .sms_commands import HELP as HELP
from .sms_commands import parse_command as parse_command

__all__ = [
    "HELP",
    "NOTIFIERS",
    "STOP_GRACE_S",
    "ChannelConfig",
    "ConsoleConfig",
    "ConsoleNotifier",
    "Delivery",
    "DeliveryOptions",
    "DeliverySettings",
    "Desk",
    "Dispatcher",
    "Group",
    "InhibitRule",
    "Inhibitor",
    "MarketContext",
    "NoSuchAlert",
    "Notification",
    "Notifier",
    "RetryPolicy",
    "RouteConfig",
    "Routed",
    "SilenceStore",
    "SmsConfig",
    "act_on_click",
    "admin",
    "answer_click",
    "check_messages",
    "compile_routes",
    "make_notifier",
    "notifier_class",
    "open_redis",
    "parse_click",
    "parse_command",
    "parse_retry_after",
    "render_rule",
    "send_test_notice",
]
