"""The daemon over HTTP: health and metrics, the desk's webhooks (Slack clicks, SMS replies).

Served by aiohttp on the daemon's event loop (`server.HttpServer`); each module here owns
one way in and answers from the running daemon and Redis.
"""
