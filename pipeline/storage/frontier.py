"""The shared crawl frontier on Redis: the night's sources waiting for a crawl worker, the workers'
claims on them, and the article URLs taken by any worker this night (one duplicate filter).

Keys (all under `dealwatch:frontier:`; one frontier per Redis database, so two dealwatch
databases sharing a Redis server use two Redis databases, `redis://host:6379/1` and `/2`):

- `enqueued`: when sources were last queued (UTC, ISO 8601): the scheduler's catch-up goes by it.
- `night`: the date of the night the frontier holds (`2026-12-06`), set by the first enqueue
  of a night; the duplicate filter is keyed by it.
- `queue`: a list of source ids waiting for a worker, taken from its head.
- `taken`: a list of source ids a worker is crawling (moved there atomically from `queue`).
- `claim:<source id>`: the worker holding the source, expiring after the claim's TTL unless the
  worker renews it. A source in `taken` whose claim has expired belongs to a worker that died:
  the next worker to look claims it again (SET NX: only one does).
- `runs`: a hash, source id → the id of the crawl run a worker is crawling it in (the run's row
  in the database), set while the crawl runs: a worker that takes over a dead worker's source
  finds there the run to record as aborted.
- `urls:<night>`: a hash, each canonical article URL some worker has requested this night → the
  source it was taken for. A worker takes a URL before requesting it; a URL held for another
  source is skipped. A URL held for the same source is that source's again: a worker crawling
  a dead worker's source again gets the articles the dead one took but may not have stored
  (the pages table says which it did store). The hash expires URL_DAYS after its last
  addition, so the next night's incremental crawl goes by the pages table again.

Every operation that must not interleave with another worker's is one Redis command or one Lua
script (which Redis runs atomically).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

PREFIX = "dealwatch:frontier:"
# How long a night's URL set outlives its last addition.
URL_DAYS = 3

# Move the head of the queue to `taken` and claim it, in one step (or nil when the queue is empty).
_TAKE = """
local source = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if source then
  redis.call('SET', ARGV[1] .. source, ARGV[2], 'EX', ARGV[3])
end
return source
"""
# Extend a claim only while this worker still holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Let go of a finished source: out of `taken`, its run forgotten, its claim gone. Only while
# the claim is this worker's, or nobody's (it lapsed and no one took the source over): a worker
# that lost its claim to another must not unlist the source or forget the other's run, or the
# source would be lost if that worker died too. ARGV[3] = '1' forgets the run only.
_DONE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[3], ARGV[1])
if ARGV[3] == '1' then
  return 1
end
redis.call('LREM', KEYS[1], 0, ARGV[1])
if holder then
  redis.call('DEL', KEYS[2])
end
return 1
"""
# Take a URL for a source: 1 when it is the source's (new, or taken for it before), else 0.
# Without an owner (''), only a URL no crawl had is taken.
_TAKE_URL = """
local added = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if added == 1 or (ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2]) then
  return 1
end
return 0
"""


def connect(url: str) -> redis.Redis:
    """A client for the Redis at url (check it first with servers.check_redis)."""
    import redis  # only a command that uses the frontier pays for the import

    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=10,
                                socket_timeout=30, health_check_interval=30)


class Frontier:
    """The night's sources and the workers' claims on them."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.queue_key = PREFIX + "queue"
        self.taken_key = PREFIX + "taken"
        self.night_key = PREFIX + "night"
        self.runs_key = PREFIX + "runs"
        self.enqueued_key = PREFIX + "enqueued"
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._done = client.register_script(_DONE)

    def claim_key(self, source_id: str) -> str:
        return f"{PREFIX}claim:{source_id}"

    def enqueue(self, source_ids: Iterable[str], night: str) -> tuple[list[str], str]:
        """Queue these sources for the night; (the ones added, the night). Sources waiting or
        being crawled already are not queued twice. When the frontier is empty this starts a
        new night (its date `night`); otherwise the sources join the night under way."""
        waiting = set(self.waiting()) | set(self.taken())
        added = [sid for sid in dict.fromkeys(source_ids) if sid not in waiting]
        if not waiting:
            self.client.set(self.night_key, night)
        if added:
            self.client.rpush(self.queue_key, *added)
        self.client.set(self.enqueued_key, datetime.now(UTC).isoformat(timespec="seconds"))
        return added, self.night()

    def last_enqueued(self) -> datetime | None:
        value = self.client.get(self.enqueued_key)
        return None if value is None else datetime.fromisoformat(str(value))

    def night(self) -> str:
        return str(self.client.get(self.night_key) or "")

    def waiting(self) -> list[str]:
        return [str(sid) for sid in self.client.lrange(self.queue_key, 0, -1)]

    def taken(self) -> list[str]:
        return [str(sid) for sid in self.client.lrange(self.taken_key, 0, -1)]

    def holder(self, source_id: str) -> str | None:
        value = self.client.get(self.claim_key(source_id))
        return None if value is None else str(value)

    def take(self, worker: str, ttl: int) -> str | None:
        """Claim the next source for worker (for ttl seconds, renewable): first a waiting one,
        then one whose worker died (its claim expired); None when there is neither."""
        source = self._take(keys=[self.queue_key, self.taken_key],
                            args=[PREFIX + "claim:", worker, ttl])
        if source is not None:
            return str(source)
        for orphan in self.taken():
            if self.client.set(self.claim_key(orphan), worker, nx=True, ex=ttl):
                return orphan
        return None

    def renew(self, source_id: str, worker: str, ttl: int) -> bool:
        """Extend worker's claim on the source; False when it has lost it."""
        return bool(self._renew(keys=[self.claim_key(source_id)], args=[worker, ttl]))

    def crawling(self, source_id: str, run_id: int) -> None:
        """Note the run a source is being crawled in (for the worker that may take it over)."""
        self.client.hset(self.runs_key, source_id, str(run_id))

    def crawled(self, source_id: str, worker: str) -> None:
        """The source's run is over (before its row is finished: a run noted here is
        unfinished); left noted when another worker holds the source now."""
        self._done(keys=[self.taken_key, self.claim_key(source_id), self.runs_key],
                   args=[source_id, worker, "1"])

    def run_of(self, source_id: str) -> int | None:
        """The run the source is being crawled in, if a worker noted one and has not ended it
        (None for a note that is not a run id: nothing to mark)."""
        value = self.client.hget(self.runs_key, source_id)
        return int(value) if value is not None and str(value).isdigit() else None

    def done(self, source_id: str, worker: str) -> None:
        """Let go of a crawled source (nothing, when another worker holds it now)."""
        self._done(keys=[self.taken_key, self.claim_key(source_id), self.runs_key],
                   args=[source_id, worker, "0"])


class SharedUrls:
    """The night's article URLs taken by any worker: the crawl's `claimed` set, through Redis.

    `LinkPolicy` asks `url in claims` (taken for another source?) and then `claims.take(url)`;
    between the two another worker may take it, so `take` is the atomic test-and-set and answers
    whether this crawl got the URL. owner: the source (or sources) this crawl is for; a URL
    taken for the same owner before (by a worker that died) is this crawl's again.
    """

    def __init__(self, client: redis.Redis, night: str, owner: str = ""):
        self.client = client
        self.key = f"{PREFIX}urls:{night}"
        self.owner = owner
        self._take = client.register_script(_TAKE_URL)

    def __contains__(self, url: object) -> bool:
        holder = self.client.hget(self.key, str(url))
        return holder is not None and (not self.owner or str(holder) != self.owner)

    def take(self, url: str) -> bool:
        """Take url for the owner; True when it is the owner's (no other source had it)."""
        return bool(self._take(keys=[self.key], args=[url, self.owner, URL_DAYS * 86400]))

    def __len__(self) -> int:
        return int(self.client.hlen(self.key))
