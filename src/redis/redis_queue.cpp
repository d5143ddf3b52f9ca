// SPDX-License-Identifier: MIT
// The Redis backend: every state transition is one Lua script (src/redis/scripts.hpp) run with
// EVALSHA on a pooled hiredis connection. Key layout and durability: docs/backends.md.
#include <algorithm>
#include <array>
#include <charconv>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "detail/random.hpp"
#include "detail/record_json.hpp"
#include "midas/redis.hpp"
#include "redis/connection.hpp"
#include "redis/errors.hpp"
#include "redis/replies.hpp"
#include "redis/scripts.hpp"
#include "url.hpp"

namespace midas {
namespace {

using detail::array_reply;
using detail::check;
using detail::Fields;
using detail::from_us;
using detail::integer_reply;
using detail::narrow_int;
using detail::parse_int;
using detail::parse_task;
using detail::PooledConnection;
using detail::QueueKey;
using detail::RedisCommand;
using detail::RedisReplyPtr;
using detail::Script;
using detail::string_of;
using detail::text;
using json = nlohmann::json;

constexpr std::size_t max_claim_per_call = 500;
constexpr std::size_t max_enqueue_per_call = 500;
constexpr std::size_t max_settle_per_call = 200;
constexpr std::size_t max_enqueue_bytes_per_call = 8 * 1024 * 1024;
constexpr std::size_t list_page_size = 200;
constexpr std::size_t prune_per_call = 1000;

// --- time and numbers ---------------------------------------------------------------------------

std::int64_t to_us(TimePoint t) {
  return std::chrono::floor<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::int64_t duration_us(Duration d) { return d.count() * 1000; }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool is_settled_status(TaskStatus s) { return s == TaskStatus::retrying || is_finished(s); }

// A task id is "<queue>/<seq>": the queue says which keys hold it (no global lookup, so the
// layout works on Redis Cluster); queue names cannot contain '/'.
struct ParsedId {
  std::string queue;
  std::string seq;
};

std::optional<ParsedId> parse_id(std::string_view id) {
  const auto slash = id.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view queue = id.substr(0, slash);
  std::string_view seq = id.substr(slash + 1);
  if (!is_valid_name(queue) || seq.empty() || seq.size() > 18 || seq.front() == '0') {
    return std::nullopt;
  }
  if (!std::all_of(seq.begin(), seq.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return ParsedId{std::string{queue}, std::string{seq}};
}

// --- the queue ----------------------------------------------------------------------------------

class RedisQueue final : public Queue {
 public:
  RedisQueue(detail::RedisEndpoint endpoint, RedisOptions options, const Clock& clock)
      : clock_{clock},
        options_{std::move(options)},
        pool_{endpoint, options_.pool_size, options_.reconnect_backoff_min,
              options_.reconnect_backoff_max, options_.log},
        wait_pool_{endpoint, 64, options_.reconnect_backoff_min, options_.reconnect_backoff_max,
                   LogSink{}} {
    for (std::size_t i = 0; i < detail::script_count; ++i) {
      source_[i] = std::string{detail::script_prelude} + std::string{detail::script_body[i]};
    }
  }

  // Checks the server, loads the scripts, checks durability.
  result<void> start() {
    {
      MIDAS_TRY(conn, pool_.acquire());
      std::vector<RedisCommand> loads;
      for (const auto& src : source_) loads.push_back({"SCRIPT", "LOAD", src});
      auto replies = detail::exchange(conn.context(), loads);
      if (!replies) {
        conn.mark_failed();
        return errc::backend_unavailable;
      }
      for (std::size_t i = 0; i < detail::script_count; ++i) {
        const redisReply& r = *replies.value()[i];
        MIDAS_TRYV(check(r));
        auto sha = string_of(r);
        if (!sha) return errc::protocol_error;
        sha_[i] = std::string{*sha};
      }
    }
    if (options_.check_durability) {
      MIDAS_TRY(findings, durability_findings());
      for (const auto& w : findings) {
        if (options_.log) options_.log(LogLevel::warning, w);
      }
    }
    return success();
  }

  // --- producers --------------------------------------------------------------------------------

  result<Enqueued> enqueue(const TaskSpec& spec) override {
    MIDAS_TRY(out, enqueue_batch(std::span<const TaskSpec>{&spec, 1}));
    return out.front();
  }

  result<std::vector<Enqueued>> enqueue_batch(std::span<const TaskSpec> specs) override {
    for (const auto& spec : specs) MIDAS_TRYV(validate(spec));
    std::vector<Enqueued> out(specs.size());
    if (specs.empty()) return out;
    const std::int64_t now = to_us(clock_.now());

    // Tasks of one queue go in as few script calls as possible, in the order given; the calls
    // are pipelined, after the SADD that makes a new queue known to list and stats.
    std::map<std::string, std::vector<std::size_t>> by_queue;
    for (std::size_t i = 0; i < specs.size(); ++i) by_queue[specs[i].queue].push_back(i);
    std::vector<RedisCommand> commands;
    std::vector<std::string> new_queues = unknown_queues(by_queue);
    if (!new_queues.empty()) {
      RedisCommand sadd{"SADD", queues_key()};
      sadd.insert(sadd.end(), new_queues.begin(), new_queues.end());
      commands.push_back(std::move(sadd));
    }
    std::vector<std::vector<std::size_t>> chunks;
    for (const auto& [queue, indexes] : by_queue) {
      std::size_t i = 0;
      while (i < indexes.size()) {
        std::vector<std::string> args{""};  // the count, filled in below
        std::vector<std::size_t> chunk;
        std::size_t bytes = 0;
        while (i < indexes.size() && chunk.size() < max_enqueue_per_call &&
               (chunk.empty() || bytes < max_enqueue_bytes_per_call)) {
          const TaskSpec& s = specs[indexes[i]];
          std::string d = detail::pack_data(
              s.priority, s.max_attempts > 0 ? s.max_attempts : default_max_attempts, now, s.type,
              dump(s.params));
          bytes += d.size();
          args.push_back(std::move(d));
          args.push_back(std::to_string(s.priority));
          args.push_back(std::to_string(to_us(s.run_at.value_or(from_us(now) + s.delay))));
          args.push_back(s.unique_key.value_or(""));
          chunk.push_back(indexes[i]);
          ++i;
        }
        args[0] = std::to_string(chunk.size());
        commands.push_back(eval(Script::enqueue, queue, now, std::move(args)));
        chunks.push_back(std::move(chunk));
      }
    }
    // A lost reply is not resent: the tasks may be stored. The caller sees backend_unavailable
    // and may enqueue again (a unique key makes that safe).
    MIDAS_TRY(replies, call(commands, OnLost::unavailable));
    std::size_t next = 0;
    if (!new_queues.empty()) MIDAS_TRYV(check(*replies[next++]));
    for (const auto& chunk : chunks) {
      MIDAS_TRY(arr, array_reply(*replies[next++]));
      if (arr->elements != chunk.size() * 2) return errc::protocol_error;
      for (std::size_t k = 0; k < chunk.size(); ++k) {
        auto seq = string_of(*arr->element[2 * k]);
        const redisReply& dup = *arr->element[2 * k + 1];
        if (!seq || dup.type != REDIS_REPLY_INTEGER) return errc::protocol_error;
        out[chunk[k]] = Enqueued{specs[chunk[k]].queue + "/" + std::string{*seq}, dup.integer != 0};
      }
    }
    remember_queues(new_queues);
    return out;
  }

  // --- workers ----------------------------------------------------------------------------------

  result<std::vector<ClaimedTask>> claim(const ClaimRequest& request) override {
    if (request.lease.count() <= 0) return errc::invalid_argument;
    const std::int64_t now = to_us(clock_.now());
    const std::int64_t deadline = now + duration_us(request.lease);
    std::vector<ClaimedTask> out;
    for (const auto& queue : request.queues) {
      if (!is_valid_name(queue)) continue;
      while (out.size() < request.limit) {
        const std::size_t n = std::min(request.limit - out.size(), max_claim_per_call);
        std::vector<std::string> args{std::to_string(n), request.worker_id,
                                      std::to_string(deadline)};
        for (std::size_t i = 0; i < n; ++i) args.push_back(detail::random_token());
        const std::vector<std::string> tokens(args.begin() + 3, args.end());
        // A lost reply is not resent: the tasks it may have leased run again once their lease
        // expires, while a second claim would lease more.
        MIDAS_TRY(reply,
                  call1(eval(Script::claim, queue, now, std::move(args)), OnLost::unavailable));
        MIDAS_TRY(arr, array_reply(*reply));
        if (arr->elements > n) return errc::protocol_error;
        for (std::size_t i = 0; i < arr->elements; ++i) {
          // The script returns each task as it was before the lease, as its ready member or its
          // hash (see scripts.hpp); apply the lease here.
          const redisReply& r = *arr->element[i];
          MIDAS_TRY(task, detail::is_member_reply(r) ? detail::parse_claimed_member(r, queue)
                                                     : parse_task(r, queue));
          task.status = TaskStatus::running;
          task.attempt += 1;
          task.updated_at = from_us(now);
          task.lease_owner = request.worker_id;
          task.lease_expires_at = from_us(deadline);
          Lease lease{task.id, tokens[i], request.worker_id, from_us(deadline)};
          out.push_back(ClaimedTask{std::move(task), std::move(lease)});
        }
        if (arr->elements < n) break;
      }
      if (out.size() >= request.limit) break;
    }
    return out;
  }

  result<std::vector<TaskId>> heartbeat(std::span<const Lease> leases, Duration lease) override {
    std::vector<TaskId> lost;
    if (leases.empty()) return lost;
    const std::int64_t now = to_us(clock_.now());
    const std::string deadline = std::to_string(now + duration_us(lease));
    std::map<std::string, std::vector<std::size_t>> by_queue;
    std::vector<std::size_t> lost_index;
    for (std::size_t i = 0; i < leases.size(); ++i) {
      auto id = parse_id(leases[i].id);
      if (id) {
        by_queue[id->queue].push_back(i);
      } else {
        lost_index.push_back(i);
      }
    }
    std::vector<RedisCommand> commands;
    for (const auto& [queue, indexes] : by_queue) {
      std::vector<std::string> args{deadline};
      for (std::size_t i : indexes) {
        args.push_back(parse_id(leases[i].id)->seq);
        args.push_back(leases[i].token);
      }
      commands.push_back(eval(Script::heartbeat, queue, now, std::move(args)));
    }
    // Renewing twice is harmless: a lost reply is resent once.
    MIDAS_TRY(replies, call(commands, OnLost::retry));
    std::size_t next = 0;
    for (const auto& [queue, indexes] : by_queue) {
      MIDAS_TRY(arr, array_reply(*replies[next++]));
      for (std::size_t k = 0; k < arr->elements; ++k) {
        const redisReply& e = *arr->element[k];
        if (e.type != REDIS_REPLY_INTEGER || e.integer < 1 ||
            static_cast<std::size_t>(e.integer) > indexes.size()) {
          return errc::protocol_error;
        }
        lost_index.push_back(indexes[static_cast<std::size_t>(e.integer) - 1]);
      }
    }
    std::sort(lost_index.begin(), lost_index.end());
    for (std::size_t i : lost_index) lost.push_back(leases[i].id);
    return lost;
  }

  result<void> settle(const Lease& lease, const Settlement& s) override {
    return apply(lease, s, false);
  }

  result<void> rescue(const Lease& lease, const Settlement& s) override {
    return apply(lease, s, true);
  }

  result<std::vector<std::error_code>> settle_batch(
      std::span<const std::pair<Lease, Settlement>> items) override {
    std::vector<std::error_code> out(items.size());
    const std::int64_t now = to_us(clock_.now());
    // One settle call per queue (its keys) and per max_settle_per_call outcomes, all in one
    // pipelined round trip: per call, Redis pays the script's set-up once, not per task.
    std::map<std::string, std::vector<std::pair<std::size_t, ParsedId>>> by_queue;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& [lease, s] = items[i];
      auto id = parse_id(lease.id);
      if (!is_settled_status(s.status)) {
        out[i] = errc::invalid_argument;
      } else if (!id) {
        out[i] = errc::lease_lost;
      } else {
        by_queue[id->queue].emplace_back(i, std::move(*id));
      }
    }
    std::vector<RedisCommand> commands;
    std::vector<std::vector<std::size_t>> sent;  // per command, the indexes of its outcomes
    for (const auto& [queue, group] : by_queue) {
      for (std::size_t from = 0; from < group.size(); from += max_settle_per_call) {
        const std::size_t to = std::min(group.size(), from + max_settle_per_call);
        std::vector<std::string> args{"0"};
        args.reserve(1 + (to - from) * 6);
        sent.emplace_back();
        for (std::size_t k = from; k < to; ++k) {
          const auto& [i, id] = group[k];
          add_settle_args(args, id, items[i].first, items[i].second);
          sent.back().push_back(i);
        }
        commands.push_back(eval(Script::settle, queue, now, std::move(args)));
      }
    }
    if (commands.empty()) return out;
    // Each outcome is fenced on its own, so resending the lot after a lost reply applies each
    // at most once (as in apply()).
    auto replies = call(commands, OnLost::in_doubt);
    bool resent = false;
    if (!replies && replies.error() == errc::in_doubt) {
      replies = call(commands, OnLost::in_doubt);
      if (!replies) {
        for (const auto& indexes : sent) {
          for (std::size_t i : indexes) out[i] = errc::in_doubt;
        }
        return out;
      }
      resent = true;
    }
    if (!replies) return replies.error();
    for (std::size_t c = 0; c < sent.size(); ++c) {
      const redisReply& reply = *replies.value()[c];
      auto codes = array_reply(reply);
      for (std::size_t k = 0; k < sent[c].size(); ++k) {
        if (!codes) {
          out[sent[c][k]] = codes.error();
        } else if (k >= reply.elements) {
          out[sent[c][k]] = errc::protocol_error;
        } else {
          out[sent[c][k]] = settle_outcome(*reply.element[k], resent);
        }
      }
    }
    return out;
  }

  result<void> checkpoint(const Lease& lease, const nlohmann::json& progress) override {
    auto id = parse_id(lease.id);
    if (!id) return errc::lease_lost;
    const std::int64_t now = to_us(clock_.now());
    // Writing the same progress twice under the same token is harmless: resent once if lost.
    MIDAS_TRY(reply, call1(eval(Script::checkpoint, id->queue, now,
                                {id->seq, lease.token, progress.is_null() ? "" : dump(progress)}),
                           OnLost::retry));
    MIDAS_TRY(code, integer_reply(*reply));
    if (code != 0) return errc::lease_lost;
    return success();
  }

  result<std::vector<ClaimedTask>> expired(std::span<const std::string> queues,
                                           std::size_t limit) override {
    std::vector<ClaimedTask> out;
    if (limit == 0) return out;
    const std::int64_t now = to_us(clock_.now());
    std::vector<RedisCommand> commands;
    std::vector<std::string_view> scanned;  // the queue of each command
    for (const auto& queue : queues) {
      if (!is_valid_name(queue)) continue;
      commands.push_back(eval(Script::expired, queue, now, {std::to_string(limit)}));
      scanned.push_back(queue);
    }
    if (commands.empty()) return out;
    MIDAS_TRY(replies, call(commands, OnLost::retry));
    for (std::size_t q = 0; q < replies.size(); ++q) {
      MIDAS_TRY(arr, array_reply(*replies[q]));
      for (std::size_t i = 0; i < arr->elements; ++i) {
        std::string token;
        MIDAS_TRY(task, parse_task(*arr->element[i], scanned[q], {}, &token));
        if (!task.lease_expires_at) return errc::protocol_error;
        Lease lease{task.id, std::move(token), task.lease_owner.value_or(""),
                    *task.lease_expires_at};
        out.push_back(ClaimedTask{std::move(task), std::move(lease)});
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const ClaimedTask& a, const ClaimedTask& b) {
      return a.lease.expires_at < b.lease.expires_at;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  result<bool> wait_for_tasks(std::span<const std::string> queues, Duration max_wait) override {
    std::vector<std::string> names;
    for (const auto& q : queues) {
      if (is_valid_name(q)) names.push_back(q);
    }
    if (names.empty()) {
      std::this_thread::sleep_for(max_wait);
      return false;
    }
    // First look (and clear stale wake-up tokens): anything due now needs no wait.
    const std::int64_t now = to_us(clock_.now());
    std::vector<RedisCommand> probes;
    for (const auto& q : names) probes.push_back(eval(Script::probe, q, now, {}));
    MIDAS_TRY(replies, call(probes, OnLost::retry));
    std::optional<std::int64_t> next_due;
    for (const auto& reply : replies) {
      MIDAS_TRY(arr, array_reply(*reply));
      if (arr->elements != 2 || arr->element[0]->type != REDIS_REPLY_INTEGER) {
        return errc::protocol_error;
      }
      if (arr->element[0]->integer != 0) return true;
      if (auto next = string_of(*arr->element[1]); next && !next->empty()) {
        auto at = parse_int(*next);
        if (!at) return errc::protocol_error;
        next_due = next_due ? std::min(*next_due, *at) : *at;
      }
    }
    Duration wait = max_wait;
    if (next_due) {
      const auto until = std::chrono::duration_cast<Duration>(
          std::chrono::microseconds{*next_due - now} + std::chrono::microseconds{999});
      if (until.count() <= 0) return true;
      wait = std::min(wait, until);
    }
    if (wait.count() <= 0) return false;

    // Then block on the queues' notify lists (the scripts that make a task due push to them),
    // on a connection of its own so the command pool is not held.
    MIDAS_TRY(conn, wait_pool_.acquire());
    const auto budget = wait + options_.command_timeout;
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(budget.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((budget.count() % 1000) * 1000);
    if (redisSetTimeout(&conn.context(), tv) != REDIS_OK) {
      conn.mark_failed();
      return errc::backend_unavailable;
    }
    RedisCommand blpop{"BLPOP"};
    for (const auto& q : names) blpop.push_back(key(q, QueueKey::notify));
    blpop.push_back(std::to_string(static_cast<double>(wait.count()) / 1000.0));
    auto r = detail::exchange(conn.context(), std::span<const RedisCommand>{&blpop, 1});
    if (!r) {
      conn.mark_failed();
      return errc::backend_unavailable;
    }
    const redisReply& reply = *r.value().front();
    MIDAS_TRYV(check(reply));
    return reply.type == REDIS_REPLY_ARRAY;
  }

  // --- operators --------------------------------------------------------------------------------

  result<Task> get(const TaskId& id) override {
    auto parsed = parse_id(id);
    if (!parsed) return errc::task_not_found;
    MIDAS_TRY(reply, call1({"HGETALL", task_key(parsed->queue, parsed->seq)}, OnLost::retry));
    MIDAS_TRYV(check(*reply));
    return parse_task(*reply, parsed->queue, parsed->seq);
  }

  result<std::vector<Task>> list(const ListFilter& filter) override {
    std::vector<Task> out;
    std::vector<std::string> queues;
    if (filter.queue) {
      if (!is_valid_name(*filter.queue)) return out;
      queues.push_back(*filter.queue);
    } else {
      MIDAS_TRY(all, all_queues());
      queues = std::move(all);
    }
    if (filter.type && !is_valid_name(*filter.type)) return out;
    if (filter.limit == 0 || queues.empty()) return out;
    const std::string status = filter.status ? std::string{to_string(*filter.status)} : "";
    const std::string type = filter.type.value_or("");
    const std::int64_t now = to_us(clock_.now());

    // Each queue is walked newest first, a page at a time; the pages are merged by created_at.
    struct Row {
      std::int64_t created;
      std::int64_t seq;
    };
    struct Cursor {
      std::string max = "+inf";
      bool done = false;
      std::deque<Row> rows;
    };
    std::vector<Cursor> cursors(queues.size());
    auto refill = [&]() -> result<void> {
      for (;;) {
        std::vector<std::size_t> which;
        std::vector<RedisCommand> commands;
        for (std::size_t i = 0; i < cursors.size(); ++i) {
          if (cursors[i].rows.empty() && !cursors[i].done) {
            which.push_back(i);
            commands.push_back(
                eval(Script::list_page, queues[i], now,
                     {cursors[i].max, std::to_string(list_page_size), status, type}));
          }
        }
        if (commands.empty()) return success();
        MIDAS_TRY(replies, call(commands, OnLost::retry));
        for (std::size_t k = 0; k < which.size(); ++k) {
          Cursor& c = cursors[which[k]];
          MIDAS_TRY(arr, array_reply(*replies[k]));
          if (arr->elements != 3 || arr->element[0]->type != REDIS_REPLY_INTEGER ||
              arr->element[2]->type != REDIS_REPLY_ARRAY) {
            return errc::protocol_error;
          }
          const auto scanned = static_cast<std::size_t>(arr->element[0]->integer);
          auto last = string_of(*arr->element[1]);
          if (scanned < list_page_size || !last || last->empty()) {
            c.done = true;
          } else {
            c.max = "(" + std::string{*last};
          }
          const redisReply& rows = *arr->element[2];
          for (std::size_t j = 0; j + 1 < rows.elements; j += 2) {
            auto seq = parse_int(string_of(*rows.element[j]).value_or(""));
            auto created = parse_int(string_of(*rows.element[j + 1]).value_or(""));
            if (!seq || !created) return errc::protocol_error;
            c.rows.push_back(Row{*created, *seq});
          }
        }
      }
    };
    const std::size_t need = filter.offset > std::numeric_limits<std::size_t>::max() - filter.limit
                                 ? std::numeric_limits<std::size_t>::max()
                                 : filter.offset + filter.limit;
    std::vector<std::pair<std::size_t, std::int64_t>> picked;  // queue index, seq
    std::size_t taken = 0;
    while (taken < need) {
      MIDAS_TRYV(refill());
      std::optional<std::size_t> best;
      for (std::size_t i = 0; i < cursors.size(); ++i) {
        if (cursors[i].rows.empty()) continue;
        const Row& r = cursors[i].rows.front();
        if (!best) {
          best = i;
          continue;
        }
        const Row& b = cursors[*best].rows.front();
        if (r.created > b.created || (r.created == b.created && r.seq > b.seq)) best = i;
      }
      if (!best) break;
      if (taken >= filter.offset) picked.emplace_back(*best, cursors[*best].rows.front().seq);
      cursors[*best].rows.pop_front();
      ++taken;
    }
    if (picked.empty()) return out;
    std::vector<RedisCommand> gets;
    for (const auto& [q, seq] : picked) {
      gets.push_back({"HGETALL", task_key(queues[q], std::to_string(seq))});
    }
    MIDAS_TRY(replies, call(gets, OnLost::retry));
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const redisReply& reply = *replies[i];
      MIDAS_TRYV(check(reply));
      auto task = parse_task(reply, queues[picked[i].first], std::to_string(picked[i].second));
      if (!task && task.error() == errc::task_not_found) continue;  // pruned meanwhile
      if (!task) return task.error();
      out.push_back(std::move(task).value());
    }
    return out;
  }

  result<void> cancel(const TaskId& id) override {
    auto parsed = parse_id(id);
    if (!parsed) return errc::task_not_found;
    const std::int64_t now = to_us(clock_.now());
    // Cancelling twice is the same as once: resent once if the reply is lost.
    MIDAS_TRY(reply, call1(eval(Script::cancel, parsed->queue, now, {parsed->seq}), OnLost::retry));
    MIDAS_TRY(code, integer_reply(*reply));
    switch (code) {
      case 0:
        return success();
      case 1:
        return errc::task_not_found;
      case 2:
        return errc::invalid_state;
      default:
        return errc::protocol_error;
    }
  }

  result<void> requeue(const TaskId& id) override {
    auto parsed = parse_id(id);
    if (!parsed) return errc::task_not_found;
    const std::int64_t now = to_us(clock_.now());
    // A second requeue after a lost reply would say invalid_state whether or not the first
    // worked: the caller is told the outcome is unknown instead.
    MIDAS_TRY(reply,
              call1(eval(Script::requeue, parsed->queue, now, {parsed->seq}), OnLost::in_doubt));
    MIDAS_TRY(code, integer_reply(*reply));
    switch (code) {
      case 0:
        return success();
      case 1:
        return errc::task_not_found;
      case 2:
        return errc::invalid_state;
      case 3:
        return errc::duplicate_task;
      default:
        return errc::protocol_error;
    }
  }

  result<std::size_t> prune(TimePoint cutoff, std::size_t limit) override {
    std::size_t removed = 0;
    if (limit == 0) return removed;
    MIDAS_TRY(queues, all_queues());
    const std::int64_t now = to_us(clock_.now());
    const std::string before = std::to_string(to_us(cutoff));
    for (const auto& queue : queues) {
      while (removed < limit) {
        const std::size_t n = std::min(limit - removed, prune_per_call);
        MIDAS_TRY(reply, call1(eval(Script::prune, queue, now, {before, std::to_string(n)}),
                               OnLost::retry));
        MIDAS_TRY(count, integer_reply(*reply));
        removed += static_cast<std::size_t>(count);
        if (static_cast<std::size_t>(count) < n) break;
      }
      if (removed >= limit) break;
    }
    return removed;
  }

  result<Stats> stats(const std::optional<std::string>& queue) override {
    Stats out;
    std::vector<std::string> queues;
    if (queue) {
      if (is_valid_name(*queue)) queues.push_back(*queue);
    } else {
      MIDAS_TRY(all, all_queues());
      queues = std::move(all);
    }
    const std::int64_t now = to_us(clock_.now());
    std::vector<RedisCommand> commands;
    for (const auto& q : queues) commands.push_back(eval(Script::stats, q, now, {}));
    if (!commands.empty()) {
      MIDAS_TRY(replies, call(commands, OnLost::retry));
      for (std::size_t i = 0; i < queues.size(); ++i) {
        MIDAS_TRY(arr, array_reply(*replies[i]));
        if (arr->elements != 2) return errc::protocol_error;
        MIDAS_TRY(counts, Fields::from(*arr->element[0]));
        QueueStats s;
        s.queue = queues[i];
        auto count = [&](std::string_view name) -> std::size_t {
          auto v = parse_int(counts.get(name).value_or("0"));
          return v && *v > 0 ? static_cast<std::size_t>(*v) : 0;
        };
        s.pending = count("pending");
        s.running = count("running");
        s.retrying = count("retrying");
        s.succeeded = count("succeeded");
        s.failed = count("failed");
        s.cancelled = count("cancelled");
        if (auto oldest = string_of(*arr->element[1]); oldest && !oldest->empty()) {
          auto at = parse_int(*oldest);
          if (!at) return errc::protocol_error;
          s.oldest_due_age =
              std::chrono::duration_cast<Duration>(std::chrono::microseconds{now - *at});
        }
        if (s.pending + s.running + s.retrying + s.succeeded + s.failed + s.cancelled == 0) {
          continue;  // a queue without tasks (all pruned) is not listed
        }
        out.queues.push_back(std::move(s));
      }
    }
    if (options_.check_durability) {
      MIDAS_TRY(findings, durability_findings());
      out.durability_warnings = std::move(findings);
    }
    return out;
  }

  [[nodiscard]] const Clock& clock() const noexcept override { return clock_; }

 private:
  enum class OnLost {
    unavailable,  ///< The command may have run; say backend_unavailable (enqueue, claim).
    retry,        ///< Safe to run twice: send once more, then backend_unavailable.
    in_doubt,     ///< Not safe to repeat blindly: errc::in_doubt.
  };

  // --- keys -------------------------------------------------------------------------------------

  [[nodiscard]] std::string base(std::string_view queue) const {
    return "{" + options_.key_prefix + ":" + std::string{queue} + "}";
  }
  [[nodiscard]] std::string key(std::string_view queue, QueueKey k) const {
    return base(queue) + std::string{detail::queue_key_suffix[static_cast<std::size_t>(k)]};
  }
  [[nodiscard]] std::string task_key(std::string_view queue, std::string_view seq) const {
    return base(queue) + ":task:" + std::string{seq};
  }
  [[nodiscard]] std::string queues_key() const { return options_.key_prefix + ":queues"; }

  // EVALSHA of `script` on `queue`'s keys with ARGV = base, now, args...
  [[nodiscard]] RedisCommand eval(Script script, std::string_view queue, std::int64_t now,
                                  std::vector<std::string> args) const {
    RedisCommand c;
    c.reserve(3 + detail::queue_key_count + 2 + args.size());
    c.push_back("EVALSHA");
    c.push_back(sha_[static_cast<std::size_t>(script)]);
    c.push_back(std::to_string(detail::queue_key_count));
    const std::string b = base(queue);
    for (auto suffix : detail::queue_key_suffix) c.push_back(b + std::string{suffix});
    c.push_back(b);
    c.push_back(std::to_string(now));
    for (auto& a : args) c.push_back(std::move(a));
    return c;
  }

  // --- calls ------------------------------------------------------------------------------------

  // Sends `commands` pipelined on one pooled connection. Scripts missing from the server's cache
  // (restart, SCRIPT FLUSH) are loaded and their calls sent again: NOSCRIPT means they did not
  // run. Errors as detail::exchange.
  result<std::vector<RedisReplyPtr>> run(std::span<const RedisCommand> commands) {
    for (int attempt = 0;; ++attempt) {
      MIDAS_TRY(conn, pool_.acquire());
      auto replies = detail::exchange(conn.context(), commands);
      if (!replies) {
        conn.mark_failed();
        // Nothing left this connection, so nothing ran: one more try on a fresh one.
        if (replies.error() == errc::backend_unavailable && attempt == 0) continue;
        return replies.error();
      }
      MIDAS_TRYV(reload_missing(conn, commands, replies.value()));
      return std::move(replies).value();
    }
  }

  result<void> reload_missing(PooledConnection& conn, std::span<const RedisCommand> commands,
                              std::vector<RedisReplyPtr>& replies) {
    std::vector<std::size_t> again;
    std::set<std::size_t> scripts;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      const redisReply& r = *replies[i];
      if (r.type != REDIS_REPLY_ERROR || !detail::is_noscript(text(r))) continue;
      again.push_back(i);
      for (std::size_t s = 0; s < detail::script_count; ++s) {
        if (commands[i].size() > 1 && commands[i][1] == sha_[s]) scripts.insert(s);
      }
    }
    if (again.empty()) return success();
    std::vector<RedisCommand> resend;
    for (std::size_t s : scripts) resend.push_back({"SCRIPT", "LOAD", source_[s]});
    for (std::size_t i : again) resend.push_back(commands[i]);
    auto r = detail::exchange(conn.context(), resend);
    if (!r) {
      conn.mark_failed();
      return r.error();
    }
    for (std::size_t k = 0; k < scripts.size(); ++k) MIDAS_TRYV(check(*r.value()[k]));
    for (std::size_t k = 0; k < again.size(); ++k) {
      replies[again[k]] = std::move(r.value()[scripts.size() + k]);
    }
    if (options_.log) {
      options_.log(LogLevel::info,
                   "redis: the server's script cache lacked midas scripts (restart or SCRIPT "
                   "FLUSH); loaded them again");
    }
    return success();
  }

  result<std::vector<RedisReplyPtr>> call(std::span<const RedisCommand> commands, OnLost on_lost) {
    auto r = run(commands);
    if (r || r.error() != errc::in_doubt) return r;
    switch (on_lost) {
      case OnLost::unavailable:
        return errc::backend_unavailable;
      case OnLost::retry: {
        auto again = run(commands);
        if (!again && again.error() == errc::in_doubt) return errc::backend_unavailable;
        return again;
      }
      case OnLost::in_doubt:
        return r;
    }
    return r;
  }

  result<RedisReplyPtr> call1(RedisCommand command, OnLost on_lost) {
    MIDAS_TRY(replies, call(std::span<const RedisCommand>{&command, 1}, on_lost));
    return std::move(replies.front());
  }

  // --- transitions ------------------------------------------------------------------------------

  // Appends one outcome's group of the settle script's arguments.
  static void add_settle_args(std::vector<std::string>& args, const ParsedId& id,
                              const Lease& lease, const Settlement& s) {
    args.push_back(id.seq);
    args.push_back(lease.token);
    args.emplace_back(to_string(s.status));
    args.push_back(std::to_string(to_us(s.run_at)));
    args.emplace_back(s.counts_attempt ? "1" : "0");
    std::string one = "[";  // an array of one: see the settle script
    one += detail::dump_record(s.record);
    one += ']';
    args.push_back(std::move(one));
  }

  // What the settle script answered: 0 recorded, 1 fenced out. After a resend (the first reply
  // was lost), "fenced out" may mean the first call was recorded: in_doubt.
  static std::error_code settle_outcome(const redisReply& reply, bool resent) {
    auto code = integer_reply(reply);
    if (!code) return code.error();
    if (code.value() == 0) return {};
    if (code.value() == 1) return resent ? errc::in_doubt : errc::lease_lost;
    return errc::protocol_error;
  }

  result<void> apply(const Lease& lease, const Settlement& s, bool rescuing) {
    if (!is_settled_status(s.status)) return errc::invalid_argument;
    auto id = parse_id(lease.id);
    if (!id) return errc::lease_lost;
    std::vector<std::string> args{rescuing ? "1" : "0"};
    add_settle_args(args, *id, lease, s);
    const RedisCommand command =
        eval(Script::settle, id->queue, to_us(clock_.now()), std::move(args));
    auto reply = call1(command, OnLost::in_doubt);
    bool resent = false;
    if (!reply && reply.error() == errc::in_doubt) {
      // The reply was lost. Sending the same settlement again is safe, because it is fenced by
      // the token: it applies only if the first did not. If it is refused, the first may have
      // applied (or another worker took the task): the outcome is unknown.
      reply = call1(command, OnLost::in_doubt);
      if (!reply) return errc::in_doubt;
      resent = true;
    }
    if (!reply) return reply.error();
    MIDAS_TRY(codes, array_reply(*reply.value()));
    if (codes->elements != 1) return errc::protocol_error;
    const std::error_code ec = settle_outcome(*codes->element[0], resent);
    if (ec) return ec;
    return success();
  }

  // --- queues and durability --------------------------------------------------------------------

  std::vector<std::string> unknown_queues(
      const std::map<std::string, std::vector<std::size_t>>& by_queue) {
    std::lock_guard lock{known_mutex_};
    std::vector<std::string> out;
    for (const auto& [q, _] : by_queue) {
      if (!known_queues_.contains(q)) out.push_back(q);
    }
    return out;
  }

  void remember_queues(const std::vector<std::string>& queues) {
    std::lock_guard lock{known_mutex_};
    known_queues_.insert(queues.begin(), queues.end());
  }

  // Every queue that ever had a task, by name.
  result<std::vector<std::string>> all_queues() {
    MIDAS_TRY(reply, call1({"SMEMBERS", queues_key()}, OnLost::retry));
    MIDAS_TRY(arr, array_reply(*reply));
    std::vector<std::string> out;
    for (std::size_t i = 0; i < arr->elements; ++i) {
      auto name = string_of(*arr->element[i]);
      if (name && is_valid_name(*name)) out.emplace_back(*name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // What the server's configuration means for durability, as warnings (empty is good).
  result<std::vector<std::string>> durability_findings() {
    std::vector<RedisCommand> commands{{"CONFIG", "GET", "appendonly"},
                                       {"CONFIG", "GET", "appendfsync"},
                                       {"CONFIG", "GET", "maxmemory-policy"}};
    MIDAS_TRY(replies, call(commands, OnLost::retry));
    const std::string where = "Redis at " + pool_.endpoint().describe();
    std::vector<std::string> out;
    std::array<std::string, 3> values;
    for (std::size_t i = 0; i < commands.size(); ++i) {
      const redisReply& r = *replies[i];
      if (r.type == REDIS_REPLY_ERROR) {
        out.push_back(where + ": cannot read its configuration (CONFIG GET answered \"" +
                      std::string{text(r)} +
                      "\"; managed services often disable CONFIG), so midas cannot check that "
                      "appendonly is yes and maxmemory-policy is noeviction: make sure they are, "
                      "or acknowledged tasks can be lost");
        return out;
      }
      if (r.type == REDIS_REPLY_ARRAY && r.elements == 2) {
        values[i] = std::string{string_of(*r.element[1]).value_or("")};
      }
    }
    if (values[0] != "yes") {
      out.push_back(where + ": appendonly is " + (values[0].empty() ? "unknown" : values[0]) +
                    ": tasks written since the last RDB snapshot are lost if the server crashes "
                    "or restarts (set appendonly yes)");
    } else if (values[1] == "no") {
      out.push_back(where +
                    ": appendfsync is no: the kernel flushes the append-only file when it likes "
                    "(about every 30 s), so acknowledged tasks can be lost if the host crashes "
                    "(use appendfsync everysec or always)");
    }
    if (values[2] != "noeviction") {
      out.push_back(where + ": maxmemory-policy is " + (values[2].empty() ? "unknown" : values[2]) +
                    ": under memory pressure Redis deletes keys, tasks included (set "
                    "maxmemory-policy noeviction)");
    }
    return out;
  }

  const Clock& clock_;
  const RedisOptions options_;
  detail::RedisPool pool_;
  detail::RedisPool wait_pool_;
  std::array<std::string, detail::script_count> source_{};
  std::array<std::string, detail::script_count> sha_{};
  std::mutex known_mutex_;
  std::set<std::string> known_queues_;
};

// Reads a whole-number URL parameter within [lo, hi].
std::optional<std::int64_t> bounded(std::string_view text, std::int64_t lo, std::int64_t hi) {
  auto v = parse_int(text);
  if (!v || *v < lo || *v > hi) return std::nullopt;
  return v;
}

}  // namespace

result<std::unique_ptr<Queue>> connect_redis(std::string_view url, RedisOptions options,
                                             ConnectOptions connect_options) {
  MIDAS_TRY(parsed, detail::parse_url(url));
  if (parsed.scheme != "redis" || parsed.host.empty()) return errc::invalid_url;
  detail::RedisEndpoint endpoint;
  endpoint.host = parsed.host;
  endpoint.port = parsed.port.value_or(6379);
  if (parsed.password) {
    endpoint.password = parsed.password;
    endpoint.user = parsed.user;
  } else if (parsed.user) {
    return errc::invalid_url;  // "redis://secret@host": say ":secret@" for a password
  }
  if (!parsed.path.empty()) {
    auto db = bounded(parsed.path, 0, 1'000'000);
    if (!db) return errc::invalid_url;
    endpoint.db = static_cast<int>(*db);
  }
  for (const auto& [k, v] : parsed.query) {
    if (k == "prefix") {
      if (!is_valid_name(v)) return errc::invalid_url;
      options.key_prefix = v;
    } else if (k == "pool") {
      auto n = bounded(v, 1, 1024);
      if (!n) return errc::invalid_url;
      options.pool_size = static_cast<std::size_t>(*n);
    } else if (k == "connect_timeout_ms" || k == "command_timeout_ms") {
      auto n = bounded(v, 1, 3'600'000);
      if (!n) return errc::invalid_url;
      (k == "connect_timeout_ms" ? options.connect_timeout : options.command_timeout) =
          std::chrono::milliseconds{*n};
    } else {
      return errc::invalid_url;  // a misspelt parameter is an error, not silently ignored
    }
  }
  if (!is_valid_name(options.key_prefix) || options.pool_size == 0 ||
      options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0) {
    return errc::invalid_argument;
  }
  endpoint.connect_timeout = options.connect_timeout;
  endpoint.command_timeout = options.command_timeout;
  const Clock& clock = connect_options.clock ? *connect_options.clock : SystemClock::instance();
  auto queue = std::make_unique<RedisQueue>(std::move(endpoint), std::move(options), clock);
  MIDAS_TRYV(queue->start());
  return std::unique_ptr<Queue>{std::move(queue)};
}

}  // namespace midas
