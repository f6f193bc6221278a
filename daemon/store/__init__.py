"""Stage 2, Redis: every key (`keys.Keys`), and every read and write, behind small typed APIs.

Only this package imports `redis` (tests/unit/test_layout.py). The names the other stages may
use are `__all__`, each with its module in `__init__.pyi`, imported on first use: the stores of
each stage (`StreamStore` for ticks and news, `StateStore` for the evaluator's commits,
`OutboxStore` and `DeliveryStore` for the router and the workers, `SilenceRecords`,
`DeadLetterStore`, `InspectStore`, `CalendarStore`, `FeedStatusStore`, `OpsStore`), and
`connect`, `EmbeddedRedis`, `EmbeddedSupervisor`, `run_resilient` to reach a server and ride out
its outages.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
