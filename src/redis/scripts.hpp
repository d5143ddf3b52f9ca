// SPDX-License-Identifier: MIT
#pragma once
/// The Lua scripts the Redis backend runs with EVALSHA. Every state transition is one script, so it
/// is atomic on the server: no crash between two round trips can lose or duplicate a task.
///
/// Calling convention (all scripts): KEYS are the nine keys of one queue, in `QueueKey` order;
/// ARGV[1] is the queue's key base `{<prefix>:<queue>}` (task hashes are `<base>:task:<seq>`, in
/// the same hash slot), ARGV[2] is now in microseconds since the epoch, from the client's Clock
/// (never Redis TIME, so tests can move time). Times are decimal microsecond strings; Lua compares
/// them as doubles, which is exact below 2^53 (the year 2255).

#include <array>
#include <cstddef>
#include <string_view>

namespace midas::detail {

/// The keys of one queue, in the order every script receives them.
enum class QueueKey : std::size_t {
  ready,      ///< ZSET, score priority, member "<run_at:17 digits>:<seq:20 digits>", or that
              ///< followed by ":<d>" (the task's packed data, see the enqueue script)
  scheduled,  ///< ZSET, score run_at, member seq
  running,    ///< ZSET, score lease deadline, member seq
  finished,   ///< ZSET, score finished_at, member seq
  unique,     ///< HASH unique_key -> seq of the unfinished task holding it
  counts,     ///< HASH status -> number of tasks
  notify,     ///< LIST of wake-up tokens (BLPOP)
  all,        ///< ZSET, score seq, member seq: every stored task, for list
  seq,        ///< STRING counter (INCR) for task numbers
};
inline constexpr std::size_t queue_key_count = 9;
inline constexpr std::array<std::string_view, queue_key_count> queue_key_suffix{
    ":ready",  ":scheduled", ":running", ":finished", ":unique",
    ":counts", ":notify",    ":all",     ":seq"};

/// The scripts, indexes into `script_source`.
enum class Script : std::size_t {
  enqueue,
  claim,
  heartbeat,
  settle,
  checkpoint,
  expired,
  cancel,
  requeue,
  prune,
  probe,
  stats,
  list_page,
};
inline constexpr std::size_t script_count = 12;

/// Shared by every script: key names, helpers.
inline constexpr std::string_view script_prelude = R"lua(
local base, now = ARGV[1], ARGV[2]
local K_READY, K_SCHED, K_RUNNING, K_FINISHED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_UNIQUE, K_COUNTS, K_NOTIFY, K_ALL, K_SEQ = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local function task_key(seq) return base .. ':task:' .. seq end
local function pad(s, n)
  if #s >= n then return s end
  return string.rep('0', n - #s) .. s
end
-- Within one priority (the score), members sort by run_at then seq: the claim order.
local function ready_member(run_at, seq)
  if string.sub(run_at, 1, 1) == '-' then run_at = '0' end
  return pad(run_at, 17) .. ':' .. pad(seq, 20)
end
-- The seq in a ready member, plain or carrying the task's data after character 38.
local function member_seq(m)
  local i = string.find(m, '[^0]', 19)  -- a third of the time of gsub('^0+', '')
  if not i or i > 38 then return '0' end
  return string.sub(m, i, 38)
end
-- A task's priority from its `priority` field (earlier layouts) or its packed data d, the first
-- part; nil if it has neither.
local function priority_in(priority, d)
  return priority or (d and string.match(d, '^[^\30]*'))
end
local function priority_of(tk)
  local f = redis.call('HMGET', tk, 'priority', 'd')
  return priority_in(f[1], f[2]) or '0'
end
-- The ready member of a due task: with its packed data d after the plain member when d is given
-- (callers give it only for a task without a unique key or a first-layout lease), at most 512
-- bytes, and run_at fits the member as it is (see enqueue and claim).
local function waiting_member(run_at, seq, d)
  local member = ready_member(run_at, seq)
  if d and #d <= 512 and #run_at <= 17 and string.sub(run_at, 1, 1) ~= '-' then
    return member .. ':' .. d
  end
  return member
end
-- Files a pending or retrying task where claim finds it; 1 if it is due now.
local function file_waiting(seq, priority, run_at)
  if tonumber(run_at) <= tonumber(now) then
    redis.call('ZADD', K_READY, priority, ready_member(run_at, seq))
    return 1
  end
  redis.call('ZADD', K_SCHED, run_at, seq)
  return 0
end
-- Wakes up to n blocked waiters (BLPOP on K_NOTIFY); the list never grows past 16 tokens.
local function notify(n)
  if n <= 0 then return end
  if n > 16 then n = 16 end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  redis.call('LPUSH', K_NOTIFY, unpack(tokens))
  redis.call('LTRIM', K_NOTIFY, 0, 15)
end
local function move_count(from, to)
  redis.call('HINCRBY', K_COUNTS, from, -1)
  redis.call('HINCRBY', K_COUNTS, to, 1)
end
-- A running task's lease is one field, lease = '<deadline> <token> <owner>'. Tasks leased under
-- the first layout (until 2026-11) have the fields token, lease_expires_at and lease_owner
-- instead; while `token` exists it is the lease (a claim deletes those three), so workers of both
-- layouts can share a queue while they are upgraded. Given f = HMGET of the task's status, lease
-- and token (in that order): the deadline of the running lease that `token` holds, or nil; and
-- where the token starts in the lease field, for a renewal.
local function held(tk, f, token)
  local f_lease, f_token = f[2], f[3]
  if f[1] ~= 'running' or token == '' then return nil end
  if f_token then
    if f_token ~= token then return nil end
    return redis.call('HGET', tk, 'lease_expires_at') or '0'
  end
  if not f_lease then return nil end
  local a = string.find(f_lease, ' ', 1, true)
  if not a then return nil end
  local b = string.find(f_lease, ' ', a + 1, true)
  -- Compared in place: a substring would be one more string for Lua to make and hash.
  if not b or b - a - 1 ~= #token or string.find(f_lease, token, a + 1, true) ~= a + 1 then
    return nil
  end
  return string.sub(f_lease, 1, a - 1), a
end
-- Frees the task's unique key if the task holds it.
local function release_unique(tk, seq)
  local key = redis.call('HGET', tk, 'unique_key')
  if key and redis.call('HGET', K_UNIQUE, key) == seq then redis.call('HDEL', K_UNIQUE, key) end
end
-- Writes to the queue's sorted sets and counts that a script gathers and applies with flush(),
-- one call per key: a script that moves many tasks makes a few calls, not a few per task.
local later_zadd, later_zrem, later_count = {}, {}, {}
local function gather(t, key, a, b)
  local l = t[key]
  if not l then
    l = {}
    t[key] = l
  end
  l[#l + 1] = a
  if b then l[#l + 1] = b end
end
local function count_later(status, delta)
  later_count[status] = (later_count[status] or 0) + delta
end
local function flush()
  for key, l in pairs(later_zrem) do
    for i = 1, #l, 1000 do redis.call('ZREM', key, unpack(l, i, math.min(#l, i + 999))) end
  end
  for key, l in pairs(later_zadd) do
    for i = 1, #l, 1000 do redis.call('ZADD', key, unpack(l, i, math.min(#l, i + 999))) end
  end
  for status, delta in pairs(later_count) do
    if delta ~= 0 then redis.call('HINCRBY', K_COUNTS, status, delta) end
  end
  later_zadd, later_zrem, later_count = {}, {}, {}
end
-- file_waiting, gathered; d as for waiting_member.
local function file_waiting_later(seq, priority, run_at, d)
  if tonumber(run_at) <= tonumber(now) then
    gather(later_zadd, K_READY, priority, waiting_member(run_at, seq, d))
    return 1
  end
  gather(later_zadd, K_SCHED, run_at, seq)
  return 0
end
local function finish(tk, seq, status)
  redis.call('HSET', tk, 'status', status, 'finished_at', now, 'updated_at', now)
  redis.call('HDEL', tk, 'lease', 'token', 'lease_owner', 'lease_expires_at')
  release_unique(tk, seq)
  redis.call('ZADD', K_FINISHED, now, seq)
end
)lua";

/// The body of each script, after the prelude.
inline constexpr std::array<std::string_view, script_count> script_body{
    // enqueue: ARGV[3] n, then n x (d, priority, run_at, unique_key or ''), where d is the task's
    // packed data, "<priority>\30<max_attempts>\30<created_at>\30<type>\30<params>" (none of
    // them holds a byte 30: numbers, a task type name, JSON text), with created_at = ARGV[2].
    // Returns n x (seq, duplicate 0/1).
    //
    // A new task's hash is d, status, attempt and run_at: what never changes is one field, and
    // it leaves out what readers derive: seq and queue (from its key), updated_at (created_at
    // until the first change) and history (empty). Each field costs Redis work at every claim
    // and settle (see docs/backends.md). A task due now without a unique key whose d is at most
    // 512 bytes has d in its ready member too, so a claim leases it without reading its hash.
    R"lua(
local n = tonumber(ARGV[3])
local out, due = {}, 0
-- Task numbers are reserved with one INCRBY for the rest of the batch when needed: one call per
-- batch unless unique keys turn some tasks into duplicates (which leaves gaps; numbers are ids,
-- not counts).
local next_seq, last_seq = 1, 0
for i = 0, n - 1 do
  local o = 4 + i * 4
  local d, prio, run_at, ukey = ARGV[o], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3]
  local existing = false
  if ukey ~= '' then existing = redis.call('HGET', K_UNIQUE, ukey) end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    if next_seq > last_seq then
      last_seq = redis.call('INCRBY', K_SEQ, n - i)
      next_seq = last_seq - (n - i) + 1
    end
    local seq = string.format('%.0f', next_seq)
    next_seq = next_seq + 1
    local tk = task_key(seq)
    -- Four fields: the claim's lease_known counts them.
    redis.call('HSET', tk, 'd', d, 'status', 'pending', 'attempt', 0, 'run_at', run_at)
    gather(later_zadd, K_ALL, seq, seq)
    count_later('pending', 1)
    if ukey == '' then
      due = due + file_waiting_later(seq, prio, run_at, d)
    else
      redis.call('HSET', tk, 'unique_key', ukey)
      redis.call('HSET', K_UNIQUE, ukey, seq)
      due = due + file_waiting_later(seq, prio, run_at)
    end
    out[#out + 1] = seq
    out[#out + 1] = 0
  end
end
flush()
notify(due)
return out
)lua",
    // claim: ARGV[3] limit, ARGV[4] worker id, ARGV[5] lease deadline, ARGV[6..] one fresh token
    // per task. Moves due scheduled tasks to ready, then leases up to limit ready tasks.
    // Returns one string or array per leased task, in three forms:
    // - A task whose ready member carries its data (see enqueue) and that was never attempted
    //   goes back as that member (it starts with a digit): the client knows the rest, and the
    //   hash is not read, a quarter of Redis's work per claimed and settled task (callgrind).
    // - Another task whose member carries its data (a retry) goes back as {member, status,
    //   attempt, run_at, history, checkpoint} ('' for a field the hash lacks), as they were
    //   before the lease.
    // - Any other task goes back as its HGETALL array as it was *before* the lease, followed by
    //   'seq', <seq> (the hash leaves seq out): the client applies what the lease changed (status
    //   running, attempt + 1, the k-th token, owner, deadline, updated_at = now), which saves a
    //   second read of the hash. The array goes joined into one string, its elements separated
    //   by byte 31 (it starts with a field name): Redis converts one string per task to the reply
    //   instead of about 20. Only the values that may hold any byte are checked for it (a unique
    //   key, and a worker id in a lease); a task where one does goes back as the array.
    R"lua(
local limit, worker, deadline = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local due = redis.call('ZRANGEBYSCORE', K_SCHED, '-inf', now, 'LIMIT', 0, 1000)
for _, seq in ipairs(due) do
  redis.call('ZREM', K_SCHED, seq)
  local f = redis.call('HMGET', task_key(seq), 'priority', 'run_at', 'd', 'unique_key', 'token')
  local prio = priority_in(f[1], f[3])
  if prio and f[2] then
    redis.call('ZADD', K_READY, prio, waiting_member(f[2], seq, not f[4] and not f[5] and f[3] or nil))
  end
end
local out = {}
if limit <= 0 then return out end
-- The attempt after `a` as a string, without Lua's float formatting in the common cases.
local next_attempt = {['0'] = '1', ['1'] = '2', ['2'] = '3'}
local function attempt_after(a)
  return next_attempt[a] or string.format('%d', (tonumber(a) or 0) + 1)
end
-- The fields lease_read looks at: one table lookup per field instead of six comparisons.
local watched = {status = 1, attempt = 2, unique_key = 3, lease = 3, lease_owner = 3, token = 4}
local function lease(tk, seq, status, attempt)
  count_later(status, -1)
  count_later('running', 1)
  redis.call('HSET', tk, 'status', 'running', 'attempt', attempt, 'lease',
    deadline .. ' ' .. ARGV[6 + #out] .. ' ' .. worker, 'updated_at', now)
  gather(later_zadd, K_RUNNING, deadline, seq)
end
-- Any other task: read its hash.
local function lease_read(tk, seq)
  local h = redis.call('HGETALL', tk)
  local status, attempt, legacy, joinable = nil, nil, nil, true
  for j = 1, #h, 2 do
    local kind = watched[h[j]]
    if kind == 1 then
      status = h[j + 1]
    elseif kind == 2 then
      attempt = h[j + 1]
    elseif kind then
      legacy = legacy or kind == 4
      if string.find(h[j + 1], '\31', 1, true) then joinable = false end
    end
  end
  if status ~= 'pending' and status ~= 'retrying' then return nil end
  if legacy then redis.call('HDEL', tk, 'token', 'lease_owner', 'lease_expires_at') end
  lease(tk, seq, status, attempt_after(attempt))
  h[#h + 1] = 'seq'
  h[#h + 1] = seq
  if joinable then return table.concat(h, '\31') end
  return h
end
-- A task whose member carries its data: enqueue and a retry make such a member, and a claim or
-- cancel removes it. A hash that still has only the four fields enqueue wrote (every change
-- since, in any release, adds updated_at) is a pending task never attempted, and the member
-- says the rest. HLEN costs Redis as much as an HGET of the status, and 4 % less than an HMGET
-- of status and updated_at. Any other task (a retry, or a task changed since its member was
-- made, such as one an older release cancelled and this one requeued) has the five fields that
-- can have changed read, and must be waiting.
local function lease_known(m, tk, seq)
  if redis.call('HLEN', tk) == 4 then
    lease(tk, seq, 'pending', '1')
    return m
  end
  -- Retried, or changed since: what can have changed is read, five fields instead of all.
  local f = redis.call('HMGET', tk, 'status', 'attempt', 'run_at', 'history', 'checkpoint')
  if f[1] ~= 'pending' and f[1] ~= 'retrying' then return nil end
  lease(tk, seq, f[1], attempt_after(f[2]))
  return {m, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}
end
-- The lowest scores first, equal scores in member order: priority, then run_at, then seq.
local popped = redis.call('ZPOPMIN', K_READY, limit)
for i = 1, #popped, 2 do
  local m = popped[i]
  local seq = member_seq(m)
  local tk = task_key(seq)
  local leased
  if #m > 38 then leased = lease_known(m, tk, seq) else leased = lease_read(tk, seq) end
  if leased then out[#out + 1] = leased end
end
flush()
return out
)lua",
    // heartbeat: ARGV[3] new deadline, then pairs (seq, token). Returns the 1-based indexes of
    // the pairs whose lease is lost.
    R"lua(
local deadline = ARGV[3]
local lost = {}
local i = 4
while i < #ARGV do
  local seq, token = ARGV[i], ARGV[i + 1]
  local tk = task_key(seq)
  local f = redis.call('HMGET', tk, 'status', 'lease', 'token')
  local current, at = held(tk, f, token)
  if current then
    if at then
      redis.call('HSET', tk, 'lease', deadline .. string.sub(f[2], at), 'updated_at', now)
    else
      redis.call('HSET', tk, 'lease_expires_at', deadline, 'updated_at', now)
    end
    redis.call('ZADD', K_RUNNING, deadline, seq)
  else
    lost[#lost + 1] = (i - 2) / 2
  end
  i = i + 2
end
return lost
)lua",
    // settle: ARGV[3] rescuing 1/0 (an outcome applies only while its lease is expired), then
    // groups of 6: seq, token, new status, run_at (retrying), counts_attempt 1/0, the history
    // record as a JSON array of one (so that a first record is stored as it comes, without a
    // string made in Lua). Each group is fenced on its own. Returns one code per group: 0, or 1
    // for a lost lease. A finished task's updated_at is its finished_at; readers take the later
    // of the two, so settle writes one.
    R"lua(
local rescuing = ARGV[3]
local out, due = {}, 0
for i = 4, #ARGV - 5, 6 do
  local seq, token, status, run_at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local counts_attempt, record = ARGV[i + 4], ARGV[i + 5]
  local tk = task_key(seq)
  local f
  if status == 'retrying' then  -- with what filing the retry takes: the priority and d
    f = redis.call('HMGET', tk, 'status', 'lease', 'token', 'history', 'unique_key', 'priority', 'd')
  else
    f = redis.call('HMGET', tk, 'status', 'lease', 'token', 'history', 'unique_key')
  end
  local deadline = held(tk, f, token)
  if not deadline or (rescuing == '1' and not ((tonumber(deadline) or 0) < tonumber(now))) then
    out[#out + 1] = 1
  else
    local history = f[4]
    if not history or history == '' or history == '[]' then
      history = record
    else
      history = string.sub(history, 1, -2) .. ',' .. string.sub(record, 2)
    end
    -- Written only when it changes (a snooze gives the attempt back).
    local attempt = {}
    if counts_attempt == '0' then
      local a = tonumber(redis.call('HGET', tk, 'attempt')) or 0
      if a > 0 then attempt = {'attempt', a - 1} end
    end
    gather(later_zrem, K_RUNNING, seq)
    count_later('running', -1)
    count_later(status, 1)
    if status == 'retrying' then
      redis.call('HSET', tk, 'status', 'retrying', 'run_at', run_at, 'updated_at', now,
        'history', history, unpack(attempt))
      -- d goes in the member unless the task has a unique key or a first-layout lease (f[3]:
      -- the claim's five-field read does not delete it).
      due = due + file_waiting_later(seq, priority_in(f[6], f[7]) or '0', run_at,
        not f[5] and not f[3] and f[7] or nil)
    else
      redis.call('HSET', tk, 'status', status, 'finished_at', now, 'history', history,
        unpack(attempt))
      if f[5] and redis.call('HGET', K_UNIQUE, f[5]) == seq then
        redis.call('HDEL', K_UNIQUE, f[5])
      end
      gather(later_zadd, K_FINISHED, now, seq)
    end
    -- The lease field stays behind: only a running task's is read (fencing checks the status
    -- first, and the reader ignores it otherwise), and the next claim overwrites it.
    out[#out + 1] = 0
  end
end
flush()
notify(due)
return out
)lua",
    // checkpoint: ARGV[3] seq, [4] token, [5] progress JSON ('' for null). Returns 0 or 1 (lost).
    R"lua(
local seq, token, progress = ARGV[3], ARGV[4], ARGV[5]
local tk = task_key(seq)
local f = redis.call('HMGET', tk, 'status', 'lease', 'token')
if not held(tk, f, token) then return 1 end
if progress == '' then
  redis.call('HDEL', tk, 'checkpoint')
else
  redis.call('HSET', tk, 'checkpoint', progress)
end
redis.call('HSET', tk, 'updated_at', now)
return 0
)lua",
    // expired (read only): ARGV[3] limit. Running tasks whose deadline < now, oldest first, as
    // HGETALL arrays followed by 'seq', <seq>.
    R"lua(
local seqs = redis.call('ZRANGEBYSCORE', K_RUNNING, '-inf', '(' .. now, 'LIMIT', 0,
  tonumber(ARGV[3]))
local out = {}
for _, seq in ipairs(seqs) do
  local t = redis.call('HGETALL', task_key(seq))
  if #t > 0 then
    t[#t + 1] = 'seq'
    t[#t + 1] = seq
    out[#out + 1] = t
  end
end
return out
)lua",
    // cancel: ARGV[3] seq. Returns 0 ok, 1 not found, 2 invalid state.
    R"lua(
local seq = ARGV[3]
local tk = task_key(seq)
local f = redis.call('HMGET', tk, 'status', 'run_at', 'd')
if not f[1] then return 1 end
if f[1] == 'cancelled' then return 0 end
if f[1] ~= 'pending' and f[1] ~= 'retrying' then return 2 end
-- Either form of its member (see waiting_member): which one it has is not recorded.
redis.call('ZREM', K_READY, ready_member(f[2], seq), waiting_member(f[2], seq, f[3]))
redis.call('ZREM', K_SCHED, seq)
move_count(f[1], 'cancelled')
finish(tk, seq, 'cancelled')
return 0
)lua",
    // requeue: ARGV[3] seq. Returns 0 ok, 1 not found, 2 invalid state, 3 unique key taken.
    R"lua(
local seq = ARGV[3]
local tk = task_key(seq)
local f = redis.call('HMGET', tk, 'status', 'unique_key')
if not f[1] then return 1 end
if f[1] ~= 'failed' and f[1] ~= 'cancelled' then return 2 end
if f[2] and redis.call('HEXISTS', K_UNIQUE, f[2]) == 1 then return 3 end
move_count(f[1], 'pending')
redis.call('HSET', tk, 'status', 'pending', 'attempt', 0, 'run_at', now, 'updated_at', now)
redis.call('HDEL', tk, 'finished_at')
if f[2] then redis.call('HSET', K_UNIQUE, f[2], seq) end
redis.call('ZREM', K_FINISHED, seq)
notify(file_waiting(seq, priority_of(tk), now))
return 0
)lua",
    // prune: ARGV[3] cutoff, [4] limit. Deletes finished tasks with finished_at < cutoff.
    // Returns how many.
    R"lua(
local seqs = redis.call('ZRANGEBYSCORE', K_FINISHED, '-inf', '(' .. ARGV[3], 'LIMIT', 0,
  tonumber(ARGV[4]))
for _, seq in ipairs(seqs) do
  local tk = task_key(seq)
  local status = redis.call('HGET', tk, 'status')
  if status then count_later(status, -1) end
  redis.call('DEL', tk)
  gather(later_zrem, K_FINISHED, seq)
  gather(later_zrem, K_ALL, seq)
end
flush()
return #seqs
)lua",
    // probe: before a blocking wait. Clears stale wake-up tokens (whatever they announced is
    // visible now) and returns {1, ''} when a task is due, else {0, next scheduled run_at or ''}.
    R"lua(
redis.call('DEL', K_NOTIFY)
if redis.call('ZCARD', K_READY) > 0 then return {1, ''} end
local first = redis.call('ZRANGE', K_SCHED, 0, 0, 'WITHSCORES')
if #first == 0 then return {0, ''} end
if tonumber(first[2]) <= tonumber(now) then return {1, ''} end
return {0, first[2]}
)lua",
    // stats (read only): {HGETALL counts, run_at of the oldest due task or ''}.
    R"lua(
local oldest, oldest_text = nil, ''
local first = redis.call('ZRANGE', K_READY, 0, 0, 'WITHSCORES')
while #first > 0 do
  local text = string.sub(first[1], 1, 17)
  local r = tonumber(text)
  if r <= tonumber(now) and (not oldest or r < oldest) then oldest, oldest_text = r, text end
  first = redis.call('ZRANGEBYSCORE', K_READY, '(' .. first[2], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
end
local s = redis.call('ZRANGE', K_SCHED, 0, 0, 'WITHSCORES')
if #s > 0 and tonumber(s[2]) <= tonumber(now) then
  local r = tonumber(s[2])
  if not oldest or r < oldest then oldest, oldest_text = r, s[2] end
end
return {redis.call('HGETALL', K_COUNTS), oldest_text}
)lua",
    // list_page (read only): ARGV[3] highest seq to look at ('+inf' or '(<seq>'), [4] count,
    // [5] status or '', [6] type or ''. Walks the queue's tasks newest first; returns
    // {scanned, last seq scanned or '', {seq, created_at, ...} of the matching ones}.
    R"lua(
local max, count, status, typ = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local seqs = redis.call('ZREVRANGEBYSCORE', K_ALL, max, '-inf', 'LIMIT', 0, count)
local out = {}
for _, seq in ipairs(seqs) do
  local f = redis.call('HMGET', task_key(seq), 'status', 'type', 'created_at', 'd')
  if f[4] then
    local created, typ_of = string.match(f[4], '^[^\30]*\30[^\30]*\30([^\30]*)\30([^\30]*)')
    f[2], f[3] = typ_of or '', created or ''  -- malformed: the client's read of it fails
  end
  if f[1] and (status == '' or f[1] == status) and (typ == '' or f[2] == typ) then
    out[#out + 1] = seq
    out[#out + 1] = f[3]
  end
end
local last = ''
if #seqs > 0 then last = seqs[#seqs] end
return {#seqs, last, out}
)lua",
};

}  // namespace midas::detail
