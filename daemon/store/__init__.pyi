"""The names of `daemon.store` the other stages use, imported lazily on first use.

For type checkers; at run time `__init__.py` reads this file (lazy_loader.attach_stub)."""

from .calendar import CalendarStore as CalendarStore
from .client import Client as Client
from .connect import connect as connect
from .connect import dedicated as dedicated
from .deadletters import DeadLetterStore as DeadLetterStore
from .delivery import DeliveryStore as DeliveryStore
from .embedded import EmbeddedRedis as EmbeddedRedis
from .feeds import FeedStatusStore as FeedStatusStore
from .inspect import InspectStore as InspectStore
from .keys import Keys as Keys
from .ops import OpsStore as OpsStore
from .ops import server_version as server_version
from .outbox import OutboxStore as OutboxStore
from .retry import REDIS_DOWN as REDIS_DOWN
from .retry import Reconnect as Reconnect
from .retry import run_resilient as run_resilient
from .silences import SilenceRecords as SilenceRecords
from .state import StateStore as StateStore
from .streams import Entry as Entry
from .streams import StreamStore as StreamStore
from .supervise import EmbeddedSupervisor as EmbeddedSupervisor

__all__ = [
    "REDIS_DOWN",
    "CalendarStore",
    "Client",
    "DeadLetterStore",
    "DeliveryStore",
    "EmbeddedRedis",
    "EmbeddedSupervisor",
    "Entry",
    "FeedStatusStore",
    "InspectStore",
    "Keys",
    "OpsStore",
    "OutboxStore",
    "Reconnect",
    "SilenceRecords",
    "StateStore",
    "StreamStore",
    "connect",
    "dedicated",
    "run_resilient",
    "server_version",
]
