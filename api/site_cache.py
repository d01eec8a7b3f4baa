"""A short-lived in-process cache of authenticated API keys, so the hot path skips a query.

Keys are held as their SHA-256, never in clear. An entry lives `ttl` seconds (MODERATO_AUTH_CACHE_SECONDS,
default 5; 0 disables): a revoked or expired key, or a policy changed by another worker or the CLI,
takes effect within that time. Changes made through this process's API are seen at once
(`forget_site`).
"""

from __future__ import annotations

import threading
import time

from api.schemas import Site
from api.security import hash_secret

MAX_ENTRIES = 10_000


class SiteCache:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Site]] = {}
        self._lock = threading.Lock()

    def get(self, api_key: str) -> Site | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(hash_secret(api_key))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, api_key: str, site: Site) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[hash_secret(api_key)] = (time.monotonic() + self.ttl, site)

    def forget_site(self, site_id: int | None) -> None:
        with self._lock:
            for digest in [d for d, (_, s) in self._entries.items() if s.id == site_id]:
                del self._entries[digest]
