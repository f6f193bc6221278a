"""The names of `daemon.store` the other stages use, imported lazily on first use.

For type checkers; at run time `__init__.py` reads this file (lazy_loader.attach_stub)."""

from .acks import AckRecords as AckRecords
from .calendar import CalendarStore as CalendarStore
from .client import Client as Client
from .connect import connect as connect
from .connect import dedicated as dedicated
from .connect import is_cluster as is_cluster
from .deadletters import DeadLetterStore as DeadLetterStore
from .delivery import DeliveryStore as DeliveryStore
from .embedded import EmbeddedRedis as EmbeddedRedis
from .escalations import EscalationStore as EscalationStore
from .feeds import FeedStatusStore as FeedStatusStore
from .inspect import InspectStore as InspectStore
from .keys import Keys as Keys
from .leases import InstanceRoster as InstanceRoster
from .leases import Lease as Lease
from .leases import LeaseLost as LeaseLost
from .numbers import AlertNumbers as AlertNumbers
from .ops import OpsStore as OpsStore
from .ops import server_version as server_version
from .opt_outs import OptOutRecords as OptOutRecords
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
    "AckRecords",
    "AlertNumbers",
    "CalendarStore",
    "Client",
    "DeadLetterStore",
    "DeliveryStore",
    "EmbeddedRedis",
    "EmbeddedSupervisor",
    "Entry",
    "EscalationStore",
    "FeedStatusStore",
    "InspectStore",
    "InstanceRoster",
    "Keys",
    "Lease",
    "LeaseLost",
    "OpsStore",
    "OptOutRecords",
    "OutboxStore",
    "Reconnect",
    "SilenceRecords",
    "StateStore",
    "StreamStore",
    "connect",
    "dedicated",
    "is_cluster",
    "run_resilient",
    "server_version",
]
