"""The Redis store's sampled wait and run times of finished jobs (the latency charts).

One Lua script, one round trip: per bucket it counts BullMQ's completed and failed
sets (scored by finish time) with ``ZCOUNT``, then reads every n-th job of each set by
rank (``ZRANGE`` on one rank is O(log N)), n the smallest that keeps the bucket within
``per_bucket``, and only four fields of each job's hash. The answer is two strings of
numbers, not thousands of replies: a pipeline of one ``HMGET`` per job costs redis-py
tens of microseconds per command, so 6,000 jobs would take longer than the whole
request may.

The wait is measured from the job's creation (``timestamp``) plus the delay it was
added with (``opts.delay``: the hash's own ``delay`` field is zeroed when BullMQ
promotes the job, and rewritten by each back-off). ``atm`` (attempts made) above one
means the job was retried: no wait time then (see ``JobStore.finished_timings``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from redis.asyncio import Redis

from ils.jobs.stores.base import JobTiming
from ils.jobs.stores.redis.bull import BullQueue

#: KEYS: the completed and failed sets. ARGV: since, until, bucket width, per bucket,
#: the jobs' key prefix. Returns the jobs per bucket and the kept jobs' finish, wait
#: (-1: none) and run times, each as comma-separated integers.
FINISHED_TIMINGS_LUA = """
local since, untl = tonumber(ARGV[1]), tonumber(ARGV[2])
local width, per, prefix = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local function int(x) return string.format("%d", x) end
local counts, out = {}, {}
local start = since
while start < untl do
  local stop = math.min(start + width, untl)
  local sizes, jobs = {}, 0
  for i = 1, 2 do
    sizes[i] = redis.call("ZCOUNT", KEYS[i], int(start), "(" .. int(stop))
    jobs = jobs + sizes[i]
  end
  counts[#counts + 1] = int(jobs)
  local stride = math.ceil(jobs / per)
  for i = 1, 2 do
    if sizes[i] > 0 then
      local first = redis.call("ZCOUNT", KEYS[i], "-inf", "(" .. int(start))
      for rank = first, first + sizes[i] - 1, stride do
        local hit = redis.call("ZRANGE", KEYS[i], rank, rank, "WITHSCORES")
        local f = redis.call("HMGET", prefix .. hit[1], "timestamp", "processedOn", "opts", "atm")
        local started = tonumber(f[2])
        if started then
          local finished = tonumber(hit[2])
          local wait = -1
          if (tonumber(f[4]) or 0) <= 1 then
            local due = tonumber(f[1]) or started
            local ok, opts = pcall(cjson.decode, f[3] or "{}")
            if ok and type(opts) == "table" and type(opts.delay) == "number" then
              due = due + opts.delay
            end
            wait = math.max(started - due, 0)
          end
          out[#out + 1] = int(finished)
          out[#out + 1] = int(wait)
          out[#out + 1] = int(math.max(finished - started, 0))
        end
      end
    end
  end
  start = stop
end
return {table.concat(counts, ","), table.concat(out, ",")}
"""


def _numbers(raw: Any) -> list[int]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [int(part) for part in text.split(",")] if text else []


async def finished_timings(
    client: Redis, bull: BullQueue, since_ms: int, until_ms: int, bucket_ms: int, per_bucket: int
) -> list[JobTiming]:
    """Sampled timings of one queue (see ``JobStore.finished_timings``), each weighted
    by its bucket's jobs over the jobs kept from that bucket."""
    if until_ms <= since_ms or bucket_ms <= 0:
        return []
    script = client.register_script(FINISHED_TIMINGS_LUA)
    keys = [bull.keys["completed"], bull.keys["failed"]]
    args: list[str | int] = [since_ms, until_ms, bucket_ms, max(per_bucket, 1), bull.keys[""]]
    counts, flat = await script(keys=keys, args=args)
    jobs = _numbers(counts)
    numbers = _numbers(flat)
    triples = [numbers[at : at + 3] for at in range(0, len(numbers), 3)]
    kept = Counter((finished - since_ms) // bucket_ms for finished, _, _ in triples)
    return [
        JobTiming(
            finished,
            None if wait < 0 else wait,
            run,
            jobs[(finished - since_ms) // bucket_ms] / kept[(finished - since_ms) // bucket_ms],
        )
        for finished, wait, run in triples
    ]
