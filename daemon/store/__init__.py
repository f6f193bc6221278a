"""Stage 2, Redis: every key (`keys.Keys`), and every read and write, behind small typed APIs.

Only this package imports `redis` (tests/unit/test_layout.py). The stages use: `streams`
(ticks and news), `state` (the evaluator's commits), `outbox` and `delivery` (the router's and
the workers'), `silences`, `deadletters`, `inspect`, `calendar`, `feeds`, `ops`; and `connect`,
`embedded`, `supervise`, `retry` to reach a server and ride out its outages.
"""
