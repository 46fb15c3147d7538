"""The one Redis client factory: a client (and its connection pool) per URL and process.

The page cache, the worker heartbeats and the queue-depth metric each talk to Redis
directly, without Django's cache API, which builds a client object on every call.
``timeout`` bounds connecting and each command, for callers that must answer even
when Redis does not (the health probe, a metrics scrape).
"""

import redis

_clients: dict[tuple[str, float | None], redis.Redis] = {}


def redis_client(url: str, *, timeout: float | None = None) -> redis.Redis:
    key = (url, timeout)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return client
