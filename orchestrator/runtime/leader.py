"""A leader lock in Redis: any number of processes may run the reconciler loop, one of them acts.

Why a lock and not configuration: ``itom-orch up``, every ``itom-orch api`` replica and a standalone
``itom-orch reconcile`` all start the loop; the lock (SET NX with an expiry, renewed by compare-and-expire)
makes exactly one of them the leader at a time, and another takes over within one expiry if it dies.
"""

from __future__ import annotations

import uuid

from orchestrator.runtime.redis_client import RedisClient

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LeaderLock:
    def __init__(self, client: RedisClient, key: str, ttl_seconds: float, holder: str | None = None) -> None:
        self.redis = client
        self.key = key
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self.token = holder or uuid.uuid4().hex
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Hold (or keep holding) the lock; True while this process is the leader."""
        if self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
            return True
        return bool(self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def release(self) -> None:
        self._release(keys=[self.key], args=[self.token])
