"""Pure tests: no Redis, no sockets, no subprocesses (rules, lifecycle, routing, parsing...)."""
