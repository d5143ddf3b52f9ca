// SPDX-License-Identifier: MIT
// DESIGN.md sections 1 and 3 through a Worker and a Registry on the backend under test: retries,
// decisions, history, rescue of expired leases, bad input. Time moves only by the ManualClock.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "conformance.hpp"

using namespace midas;
using namespace midas::testing;
using json = nlohmann::json;

namespace {

struct Greeting {
  std::string name;
  int times = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Greeting, name, times)

struct Ping {
  int n = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Ping, n)

struct Transfer {
  int amount = 0;
  std::string to;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Transfer, amount, to)

/// A retry policy with an exact schedule: `delay` between attempts, `attempts` in all.
RetryPolicy fixed(Duration delay, int attempts) {
  return RetryPolicy::fixed(delay).max_attempts(attempts).jitter(Jitter::none);
}

/// What handlers saw, recorded from worker threads and read by the case afterwards.
class Seen {
 public:
  void add(std::string s) {
    std::lock_guard lock{mutex_};
    items_.push_back(std::move(s));
  }
  [[nodiscard]] std::vector<std::string> sorted() const {
    std::lock_guard lock{mutex_};
    auto out = items_;
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> items_;
};

/// A handler for tasks that should simply succeed.
result<void> succeed(const json&, TaskContext&) { return success(); }

}  // namespace

TEST_SUITE_BEGIN("conformance");
MIDAS_CONFORMANCE_CASE("a worker runs due tasks with their params and records each success") {
  Env env;
  const TimePoint t0 = env.now();
  LogLines log;
  Seen seen;
  std::atomic<int> pings{0};
  Registry reg;
  reg.add<Greeting>("greet", [&](const Greeting& g, TaskContext& ctx) -> result<void> {
    seen.add(g.name + ":" + std::to_string(g.times) + ":" + std::to_string(ctx.attempt()));
    return success();
  });
  reg.add<Ping>("ping", [&](const Ping& p, TaskContext&) { pings += p.n; });  // void handler
  std::vector<TaskId> tasks;
  for (const auto& g : {Greeting{"ann", 1}, Greeting{"bob", 2}, Greeting{"cy", 3}}) {
    tasks.push_back(add(env.q(), reg.spec(g)));
  }
  tasks.push_back(add(env.q(), reg.spec(Ping{7})));

  Worker worker{env.q(), reg, worker_options(log)};
  CHECK(worker.id() == worker_id);
  const WorkerStats stats = worker.run_until_idle();
  CHECK(stats.claimed == 4);
  CHECK(stats.succeeded == 4);
  CHECK(stats.retried + stats.failed + stats.cancelled + stats.lease_lost == 0);
  CHECK(seen.sorted() == std::vector<std::string>{"ann:1:1", "bob:2:1", "cy:3:1"});
  CHECK(pings.load() == 7);
  for (const TaskId& id : tasks) {
    const Task t = ok(env.q().get(id));
    CHECK(t.status == TaskStatus::succeeded);
    CHECK(t.attempt == 1);
    CHECK(t.max_attempts == RetryPolicy::standard().max_attempts());
    CHECK(t.finished_at == std::optional<TimePoint>{t0});
    REQUIRE(t.history.size() == 1);
    const AttemptRecord& r = t.history[0];
    CHECK(r.attempt == 1);
    CHECK(r.worker_id == worker_id);
    CHECK(r.decision == "succeeded");
    CHECK_FALSE(r.error.has_value());
    CHECK(r.started_at == t0);
    CHECK(r.finished_at == t0);
    CHECK_FALSE(r.next_run_at.has_value());
  }
  CHECK(worker.run_until_idle().claimed == 0);
}

MIDAS_CONFORMANCE_CASE("a failed attempt is retried after the policy delay and then succeeds") {
  Env env;
  const TimePoint t0 = env.now();
  LogLines log;
  Seen seen;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add_json("flaky",
               [&](const json&, TaskContext& ctx) -> result<void> {
                 ++calls;
                 seen.add(std::to_string(ctx.attempt()));
                 if (ctx.attempt() == 1) return std::make_error_code(std::errc::timed_out);
                 if (ctx.attempt() == 2) throw std::runtime_error("flaky");
                 return success();
               },
               {.retry = fixed(30s, 5)});
  const TaskId id = add(env.q(), reg.spec("flaky", json::object()));
  CHECK(ok(env.q().get(id)).max_attempts == 5);
  Worker worker{env.q(), reg, worker_options(log)};

  WorkerStats stats = worker.run_until_idle();
  CHECK(stats.claimed == 1);
  CHECK(stats.retried == 1);
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 1);
  CHECK(t.run_at == t0 + 30s);
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0].decision == "retry");
  CHECK(t.history[0].next_run_at == std::optional<TimePoint>{t0 + 30s});
  REQUIRE(t.history[0].error.has_value());
  CHECK(contains(t.history[0].error->code, std::to_string(static_cast<int>(std::errc::timed_out))));

  env.clock.advance(29s);
  CHECK(worker.run_until_idle().claimed == 0);
  CHECK(calls.load() == 1);
  env.clock.advance(1s);
  CHECK(worker.run_until_idle().claimed == 1);
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 2);
  CHECK(t.run_at == t0 + 60s);
  REQUIRE(t.history.size() == 2);
  REQUIRE(t.history[1].error.has_value());
  CHECK(t.history[1].error->message == "flaky");
  CHECK(contains(t.history[1].error->type, "runtime_error"));

  env.clock.advance(30s);
  stats = worker.run_until_idle();
  CHECK(stats.claimed == 1);
  CHECK(stats.succeeded == 1);
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.attempt == 3);
  CHECK(t.finished_at == std::optional<TimePoint>{t0 + 60s});
  CHECK(decisions(t) == std::vector<std::string>{"retry", "retry", "succeeded"});
  for (std::size_t i = 0; i < t.history.size(); ++i) {
    CHECK(t.history[i].attempt == static_cast<int>(i) + 1);
    CHECK(t.history[i].started_at == t0 + 30s * static_cast<int>(i));
    CHECK(t.history[i].worker_id == worker_id);
  }
  CHECK_FALSE(t.history[2].error.has_value());
  CHECK(seen.sorted() == std::vector<std::string>{"1", "2", "3"});
  CHECK(worker.stats().retried == 2);
  CHECK(worker.stats().succeeded == 1);
}

MIDAS_CONFORMANCE_CASE(
    "a task whose attempts are used up fails with one history record per attempt") {
  Env env;
  const TimePoint t0 = env.now();
  LogLines log;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add_json("doomed",
               [&](const json&, TaskContext& ctx) -> result<void> {
                 ++calls;
                 throw std::runtime_error("boom " + std::to_string(ctx.attempt()));
               },
               {.retry = fixed(10s, 3)});
  const TaskId id = add(env.q(), reg.spec("doomed", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  for (int i = 0; i < 3; ++i) {
    CHECK(worker.run_until_idle().claimed == 1);
    env.clock.advance(10s);
  }
  env.clock.advance(1h);
  CHECK(worker.run_until_idle().claimed == 0);
  CHECK(calls.load() == 3);

  const Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::failed);
  CHECK(t.attempt == 3);
  CHECK(t.finished_at == std::optional<TimePoint>{t0 + 20s});
  // "exhausted": the policy had no attempt left ("fail" is kept for permanent errors).
  CHECK(decisions(t) == std::vector<std::string>{"retry", "retry", "exhausted"});
  REQUIRE(t.history.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const AttemptRecord& r = t.history[i];
    CHECK(r.attempt == static_cast<int>(i) + 1);
    CHECK(r.started_at == t0 + 10s * static_cast<int>(i));
    CHECK(r.finished_at == r.started_at);
    REQUIRE(r.error.has_value());
    CHECK(r.error->message == "boom " + std::to_string(i + 1));
    CHECK(contains(r.error->type, "runtime_error"));
  }
  CHECK(t.history[0].next_run_at == std::optional<TimePoint>{t0 + 10s});
  CHECK(t.history[1].next_run_at == std::optional<TimePoint>{t0 + 20s});
  CHECK_FALSE(t.history[2].next_run_at.has_value());
  CHECK(worker.stats().failed == 1);
  CHECK(worker.stats().retried == 2);
}

MIDAS_CONFORMANCE_CASE("ctx.fail fails the task for good whatever attempts are left") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json(
      "charge",
      [](const json&, TaskContext& ctx) -> result<void> { return ctx.fail("card rejected"); },
      {.retry = fixed(1s, 5)});
  const TaskId id = add(env.q(), reg.spec("charge", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  const WorkerStats stats = worker.run_until_idle();
  CHECK(stats.failed == 1);
  CHECK(stats.retried == 0);
  const Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::failed);
  CHECK(t.attempt == 1);
  CHECK(t.finished_at.has_value());
  CHECK(decisions(t) == std::vector<std::string>{"fail"});
  REQUIRE(t.history[0].error.has_value());
  CHECK(contains(t.history[0].error->message, "card rejected"));
}

MIDAS_CONFORMANCE_CASE("ctx.cancel ends the task as cancelled and frees its unique key") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json(
      "join", [](const json&, TaskContext& ctx) -> result<void> { return ctx.cancel("user left"); },
      {.retry = fixed(1s, 5)});
  const TaskSpec s = reg.spec("join", json::object(), {.unique_key = "join:1"});
  const TaskId id = add(env.q(), s);
  Worker worker{env.q(), reg, worker_options(log)};
  CHECK(worker.run_until_idle().cancelled == 1);
  const Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::cancelled);
  CHECK(t.attempt == 1);
  CHECK(t.finished_at.has_value());
  CHECK(decisions(t) == std::vector<std::string>{"cancel"});
  const Enqueued again = ok(env.q().enqueue(s));
  CHECK_FALSE(again.duplicate);
  CHECK(again.id != id);
}

MIDAS_CONFORMANCE_CASE("a classifier rule that fails stops the retries of a nested root cause") {
  Env env;
  LogLines log;
  Registry reg;
  const auto classifier = ErrorClassifier{}.fail_on<std::invalid_argument>();
  reg.add_json("strict",
               [](const json&, TaskContext&) -> result<void> {
                 try {
                   throw std::invalid_argument("bad card number");
                 } catch (...) {
                   std::throw_with_nested(std::runtime_error("join failed"));
                 }
               },
               {.retry = fixed(1min, 5), .classifier = classifier});
  reg.add_json("lenient",
               [](const json&, TaskContext&) -> result<void> { throw std::runtime_error("flaky"); },
               {.retry = fixed(1min, 5), .classifier = classifier});
  const TaskId strict = add(env.q(), reg.spec("strict", json::object()));
  const TaskId lenient = add(env.q(), reg.spec("lenient", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  worker.run_until_idle();

  const Task s = ok(env.q().get(strict));
  CHECK(s.status == TaskStatus::failed);
  CHECK(s.attempt == 1);
  CHECK(decisions(s) == std::vector<std::string>{"fail"});
  REQUIRE(s.history[0].error.has_value());
  CHECK(s.history[0].error->message == "bad card number");
  CHECK(contains(s.history[0].error->type, "invalid_argument"));

  const Task l = ok(env.q().get(lenient));
  CHECK(l.status == TaskStatus::retrying);
  CHECK(decisions(l) == std::vector<std::string>{"retry"});
}

MIDAS_CONFORMANCE_CASE("retry_after from the server or the handler sets the next run_at") {
  Env env;
  const TimePoint t0 = env.now();
  LogLines log;
  Registry reg;
  reg.add_json("rate-limited",
               [](const json&, TaskContext& ctx) -> result<void> {
                 if (ctx.attempt() == 1) throw HttpError(503, "busy", Duration{7s});
                 if (ctx.attempt() == 2) return ctx.retry_after(30s, "slow down");
                 return success();
               },
               {.retry = fixed(1h, 5), .classifier = ErrorClassifier{}.retry_on_status({503})});
  const TaskId id = add(env.q(), reg.spec("rate-limited", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};

  worker.run_until_idle();
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.run_at == t0 + 7s);
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0].decision == "retry_after");
  REQUIRE(t.history[0].error.has_value());
  CHECK(t.history[0].error->http_status == std::optional<int>{503});

  env.clock.advance(7s);
  CHECK(worker.run_until_idle().claimed == 1);
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 2);
  CHECK(t.run_at == t0 + 37s);

  env.clock.advance(30s);
  CHECK(worker.run_until_idle().succeeded == 1);
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.attempt == 3);
  CHECK(decisions(t) == std::vector<std::string>{"retry_after", "retry_after", "succeeded"});
}

MIDAS_CONFORMANCE_CASE("a snooze does not count an attempt but is kept in the history") {
  Env env;
  const TimePoint t0 = env.now();
  LogLines log;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add_json("poll",
               [&](const json&, TaskContext& ctx) -> result<void> {
                 if (++calls <= 3) return ctx.snooze(1min);
                 return success();
               },
               {.retry = fixed(1s, 1)});  // one attempt only: a counted snooze would fail the task
  const TaskId id = add(env.q(), reg.spec("poll", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};

  CHECK(worker.run_until_idle().snoozed == 1);
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 0);
  CHECK(t.run_at == t0 + 1min);
  CHECK(decisions(t) == std::vector<std::string>{"snooze"});
  for (int i = 0; i < 3; ++i) {
    env.clock.advance(1min);
    CHECK(worker.run_until_idle().claimed == 1);
  }
  t = ok(env.q().get(id));
  CHECK(calls.load() == 4);
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.attempt == 1);
  CHECK(decisions(t) == std::vector<std::string>{"snooze", "snooze", "snooze", "succeeded"});
  CHECK(t.history.back().attempt == 1);
  CHECK(worker.stats().snoozed == 3);
}

MIDAS_CONFORMANCE_CASE(
    "params that do not fit the registered type fail the task on its first attempt") {
  Env env;
  LogLines log;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add<Transfer>("transfer",
                    [&](const Transfer& tr, TaskContext&) -> result<void> {
                      calls += tr.amount;
                      return success();
                    },
                    {.retry = fixed(1s, 5)});
  const TaskId wrong_type =
      add(env.q(), reg.spec("transfer", json{{"amount", "lots"}, {"to", "x"}}));
  const TaskId missing = add(env.q(), reg.spec("transfer", json{{"to", "x"}}));
  const TaskId not_object = add(env.q(), reg.spec("transfer", json::array({1, 2})));
  const TaskId good = add(env.q(), reg.spec(Transfer{10, "bob"}));
  Worker worker{env.q(), reg, worker_options(log)};
  const WorkerStats stats = worker.run_until_idle();
  CHECK(stats.claimed == 4);
  CHECK(stats.failed == 3);
  CHECK(stats.succeeded == 1);
  CHECK(calls.load() == 10);
  CHECK(ok(env.q().get(good)).status == TaskStatus::succeeded);
  for (const TaskId& id : {wrong_type, missing, not_object}) {
    const Task t = ok(env.q().get(id));
    CHECK(t.status == TaskStatus::failed);
    CHECK(t.attempt == 1);
    CHECK(decisions(t) == std::vector<std::string>{"fail"});
    REQUIRE(t.history.size() == 1);
    REQUIRE(t.history[0].error.has_value());
    CHECK(contains(t.history[0].error->message, "transfer"));
  }
}

MIDAS_CONFORMANCE_CASE(
    "a handler that throws a non-standard exception fails the attempt without crashing the "
    "worker") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json("odd", [](const json&, TaskContext&) -> result<void> { throw 42; },
               {.retry = fixed(10s, 2)});
  reg.add_json("fine", succeed);
  const TaskId odd = add(env.q(), reg.spec("odd", json::object()));
  const TaskId fine = add(env.q(), reg.spec("fine", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};

  WorkerStats stats = worker.run_until_idle();
  CHECK(stats.claimed == 2);
  CHECK(stats.retried == 1);
  CHECK(stats.succeeded == 1);
  CHECK(ok(env.q().get(fine)).status == TaskStatus::succeeded);
  Task t = ok(env.q().get(odd));
  CHECK(t.status == TaskStatus::retrying);
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0].error.has_value());

  env.clock.advance(10s);
  stats = worker.run_until_idle();
  CHECK(stats.failed == 1);
  t = ok(env.q().get(odd));
  CHECK(t.status == TaskStatus::failed);
  CHECK(decisions(t) == std::vector<std::string>{"retry", "exhausted"});
}

MIDAS_CONFORMANCE_CASE(
    "a task of an unknown type is kept with a clear error and the worker goes on") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json("known", succeed);
  const TaskId unknown = add(env.q(), spec("nobody-handles-this"));
  const TaskId known = add(env.q(), reg.spec("known", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  worker.run_until_idle();

  CHECK(ok(env.q().get(known)).status == TaskStatus::succeeded);
  const Task t = ok(env.q().get(unknown));
  CHECK(t.status != TaskStatus::succeeded);
  CHECK(t.status != TaskStatus::running);
  CHECK(t.status != TaskStatus::pending);
  CHECK(t.attempt == 1);
  REQUIRE(t.history.size() == 1);
  REQUIRE(t.history[0].error.has_value());
  CHECK(contains(t.history[0].error->message, "nobody-handles-this"));
}

MIDAS_CONFORMANCE_CASE(
    "a worker rescues an expired lease as a failed attempt through the type's policy") {
  Env env;
  LogLines log;
  Seen seen;
  Registry reg;
  reg.add_json("job",
               [&](const json&, TaskContext& ctx) -> result<void> {
                 seen.add(std::to_string(ctx.attempt()));
                 return success();
               },
               {.retry = fixed(10s, 3)});
  const TaskId id = add(env.q(), reg.spec("job", json::object()));
  // A worker that claims the task and dies.
  ClaimedTask dead = claim_one(env.q(), "default", "dead-worker");
  REQUIRE(dead.task.id == id);
  env.clock.advance(9s);
  const TimePoint rescued_at = env.now();

  Worker worker{env.q(), reg, worker_options(log)};
  WorkerStats stats = worker.run_until_idle();
  CHECK(stats.rescued == 1);
  CHECK(stats.claimed == 0);
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 1);
  CHECK(t.run_at == rescued_at + 10s);
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0].attempt == 1);
  CHECK(t.history[0].decision == "retry");
  REQUIRE(t.history[0].error.has_value());
  CHECK(t.history[0].error->type == "lease_expired");
  CHECK(seen.sorted().empty());

  // The dead worker's lease is gone for good.
  CHECK(err(env.q().settle(dead.lease, settlement(dead, TaskStatus::succeeded, env.now()))) ==
        errc::lease_lost);

  env.clock.advance(10s);
  stats = worker.run_until_idle();
  CHECK(stats.succeeded == 1);
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.attempt == 2);
  CHECK(decisions(t) == std::vector<std::string>{"retry", "succeeded"});
  CHECK(seen.sorted() == std::vector<std::string>{"2"});
}

MIDAS_CONFORMANCE_CASE("an expired lease on the last attempt fails the task") {
  Env env;
  LogLines log;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add_json("once",
               [&](const json&, TaskContext&) -> result<void> {
                 ++calls;
                 return success();
               },
               {.retry = fixed(10s, 1)});
  const TaskId id = add(env.q(), reg.spec("once", json::object()));
  ClaimedTask dead = claim_one(env.q(), "default", "dead-worker");
  env.clock.advance(1min);
  Worker worker{env.q(), reg, worker_options(log)};
  const WorkerStats stats = worker.run_until_idle();
  CHECK(stats.rescued == 1);
  CHECK(stats.failed == 1);
  const Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::failed);
  CHECK(t.finished_at == std::optional<TimePoint>{env.now()});
  CHECK(decisions(t) == std::vector<std::string>{"exhausted"});
  REQUIRE(t.history[0].error.has_value());
  CHECK(t.history[0].error->type == "lease_expired");
  CHECK(calls.load() == 0);
  CHECK(err(env.q().settle(dead.lease, settlement(dead, TaskStatus::succeeded, env.now()))) ==
        errc::lease_lost);
}

MIDAS_CONFORMANCE_CASE(
    "a handler whose task was taken over gets lease_lost and cannot complete it") {
  Env env;
  LogLines log;
  std::error_code checkpoint_error;
  std::error_code heartbeat_error;
  std::optional<ClaimedTask> thief;
  Registry reg;
  reg.add_json(
      "slow",
      [&](const json&, TaskContext& ctx) -> result<void> {
        // The handler stalls past its lease; another worker rescues the task and claims
        // it.
        env.clock.advance(9s);
        const std::vector<std::string> queues{"default"};
        auto expired = env.q().expired(queues, 10);
        if (expired && expired.value().size() == 1) {
          const ClaimedTask& e = expired.value().front();
          if (env.q().rescue(e.lease, settlement(e, TaskStatus::retrying, env.now(), env.now()))) {
            auto c =
                env.q().claim({.queues = queues, .limit = 1, .worker_id = "thief", .lease = 1h});
            if (c && c.value().size() == 1) thief = c.value().front();
          }
        }
        checkpoint_error = err(ctx.checkpoint(json{{"step", "stale"}}));
        heartbeat_error = err(ctx.heartbeat());
        return success();
      },
      {.retry = fixed(1s, 5)});
  const TaskId id = add(env.q(), reg.spec("slow", json::object()));
  // One slot and no claiming ahead: with room for another task, the worker's own fetcher could
  // claim the rescued task before the thief does (legitimately), which is not what this case is
  // about.
  WorkerOptions options = worker_options(log, {"default"}, /*passive=*/true);
  options.concurrency = 1;
  options.prefetch = 0;
  Worker worker{env.q(), reg, options};
  const WorkerStats stats = worker.run_until_idle();

  REQUIRE(thief.has_value());
  CHECK(thief->task.id == id);
  CHECK(thief->task.attempt == 2);
  CHECK(checkpoint_error == errc::lease_lost);
  CHECK(heartbeat_error == errc::lease_lost);
  CHECK(stats.lease_lost == 1);
  CHECK(stats.succeeded == 0);
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::running);
  CHECK(t.lease_owner == std::optional<std::string>{"thief"});
  CHECK(t.checkpoint.is_null());
  CHECK(t.history.size() == 1);  // the rescue only: the stale success was not recorded

  ok(env.q().settle(thief->lease, settlement(*thief, TaskStatus::succeeded, env.now())));
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(decisions(t) == std::vector<std::string>{"retry", "succeeded"});
}

/// What an on_failed hook was told, recorded from worker threads.
struct FailedCall {
  TaskId id;
  int attempt = 0;
  std::string decision;
  std::string error_type;
  bool had_failure = false;
  std::string failure_message;
};

class FailedCalls {
 public:
  FailedHandler hook() {
    return [this](const Task& task, const AttemptRecord& last, const Failure* failure) {
      std::lock_guard lock{mutex_};
      calls_.push_back(FailedCall{task.id, task.attempt, last.decision,
                                  last.error ? last.error->type : std::string{}, failure != nullptr,
                                  failure != nullptr ? failure->message() : std::string{}});
    };
  }
  [[nodiscard]] std::vector<FailedCall> all() const {
    std::lock_guard lock{mutex_};
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<FailedCall> calls_;
};

MIDAS_CONFORMANCE_CASE("on_failed is told once, with the failure, when the retries run out") {
  Env env;
  LogLines log;
  FailedCalls told;
  Registry reg;
  reg.add_json("flaky",
               [](const json&, TaskContext&) -> result<void> { throw std::runtime_error("boom"); },
               {.retry = fixed(1s, 2), .on_failed = told.hook()});
  const TaskId id = add(env.q(), reg.spec("flaky", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  worker.run_until_idle();
  CHECK(told.all().empty());  // a retry is not a failure
  env.clock.advance(1s);
  worker.run_until_idle();
  const auto calls = told.all();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].id == id);
  CHECK(calls[0].attempt == 2);
  CHECK(calls[0].decision == "exhausted");
  CHECK(calls[0].had_failure);
  CHECK(calls[0].failure_message == "boom");
  CHECK(ok(env.q().get(id)).status == TaskStatus::failed);
}

MIDAS_CONFORMANCE_CASE(
    "on_failed is told of ctx.fail and of a crashed worker's last attempt, never of a success") {
  Env env;
  LogLines log;
  FailedCalls told;
  Registry reg;
  const TypeOptions options{.retry = fixed(10s, 1), .on_failed = told.hook()};
  reg.add_json(
      "refuse", [](const json&, TaskContext& ctx) -> result<void> { return ctx.fail("no"); },
      options);
  reg.add_json("fine", succeed, options);
  reg.add_json("crashy", succeed, options);
  // A worker claims this one and dies: its lease runs out on the only attempt.
  const TaskId crashed = add(env.q(), reg.spec("crashy", json::object()));
  const ClaimedTask dead = claim_one(env.q(), "default", "dead-worker");
  REQUIRE(dead.task.id == crashed);
  const TaskId refused = add(env.q(), reg.spec("refuse", json::object()));
  const TaskId fine = add(env.q(), reg.spec("fine", json::object()));
  env.clock.advance(1min);
  Worker worker{env.q(), reg, worker_options(log)};
  worker.run_until_idle();
  auto calls = told.all();
  std::sort(calls.begin(), calls.end(),
            [](const FailedCall& a, const FailedCall& b) { return a.decision < b.decision; });
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].id == crashed);
  CHECK(calls[0].decision == "exhausted");
  CHECK(calls[0].error_type == "lease_expired");
  CHECK_FALSE(calls[0].had_failure);
  CHECK(calls[1].id == refused);
  CHECK(calls[1].decision == "fail");
  CHECK_FALSE(calls[1].had_failure);
  CHECK(ok(env.q().get(fine)).status == TaskStatus::succeeded);
}

MIDAS_CONFORMANCE_CASE("an on_failed that throws does not keep the failure from being recorded") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json(
      "refuse", [](const json&, TaskContext& ctx) -> result<void> { return ctx.fail("no"); },
      {.retry = fixed(1s, 3), .on_failed = [](const Task&, const AttemptRecord&, const Failure*) {
         throw std::runtime_error("report failed");
       }});
  const TaskId id = add(env.q(), reg.spec("refuse", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  CHECK(worker.run_until_idle().failed == 1);
  CHECK(ok(env.q().get(id)).status == TaskStatus::failed);
  bool logged = false;
  for (const auto& line : log.lines())
    logged = logged || contains(line, "on_failed threw: report failed");
  CHECK(logged);
}

MIDAS_CONFORMANCE_CASE(
    "a task rescued with no retry delay keeps its place in line, ahead of later tasks") {
  Env env;
  LogLines log;
  Seen order;
  Registry reg;
  reg.add_json(
      "job",
      [&](const json& p, TaskContext&) -> result<void> {
        order.add(std::to_string(order.sorted().size()) + ":" + p.at("name").get<std::string>());
        return success();
      },
      {.retry = fixed(0s, 5)});
  const TaskId first = add(env.q(), reg.spec("job", json{{"name", "a"}}));
  const ClaimedTask dead = claim_one(env.q(), "default", "dead-worker");
  REQUIRE(dead.task.id == first);
  env.clock.advance(1s);
  (void)add(env.q(), reg.spec("job", json{{"name", "b"}}));
  (void)add(env.q(), reg.spec("job", json{{"name", "c"}}));
  env.clock.advance(1min);  // a's lease is long gone; b and c have waited a minute too
  WorkerOptions options = worker_options(log);
  options.concurrency = 1;
  Worker worker{env.q(), reg, options};
  worker.run_until_idle();
  CHECK(order.sorted() == std::vector<std::string>{"0:a", "1:b", "2:c"});
  const Task t = ok(env.q().get(first));
  CHECK(t.status == TaskStatus::succeeded);
  REQUIRE(t.history.size() == 2);
  CHECK(t.history[0].error->type == "lease_expired");
  CHECK(t.history[0].next_run_at == std::optional<TimePoint>{dead.task.run_at});
}

MIDAS_CONFORMANCE_CASE("a heartbeat from the handler keeps its task from expiring") {
  Env env;
  LogLines log;
  std::error_code heartbeat_error{make_error_code(errc::protocol_error)};
  std::size_t expired_seen = 99;
  Registry reg;
  reg.add_json("long", [&](const json&, TaskContext& ctx) -> result<void> {
    env.clock.advance(6s);
    heartbeat_error = err(ctx.heartbeat());
    env.clock.advance(6s);  // 12 s after the claim: past the first 8 s lease
    const std::vector<std::string> queues{"default"};
    auto expired = env.q().expired(queues, 10);
    if (expired) expired_seen = expired.value().size();
    return success();
  });
  const TaskId id = add(env.q(), reg.spec("long", json::object()));
  Worker worker{env.q(), reg, worker_options(log, {"default"}, /*passive=*/true)};
  const WorkerStats stats = worker.run_until_idle();
  CHECK(heartbeat_error == std::error_code{});
  CHECK(expired_seen == 0);
  CHECK(stats.succeeded == 1);
  CHECK(stats.rescued == 0);
  CHECK(ok(env.q().get(id)).status == TaskStatus::succeeded);
}

MIDAS_CONFORMANCE_CASE("a checkpoint written by a handler is seen by the next attempt") {
  Env env;
  LogLines log;
  std::mutex mutex;
  json seen_by_second = "not run";
  json seen_in_task = "not run";
  Registry reg;
  reg.add_json("steps",
               [&](const json&, TaskContext& ctx) -> result<void> {
                 if (ctx.attempt() == 1) {
                   if (!ctx.saved_checkpoint().is_null()) return ctx.fail("unexpected checkpoint");
                   MIDAS_TRYV(ctx.checkpoint(json{{"charged", true}}));
                   throw std::runtime_error("crashed after charging");
                 }
                 std::lock_guard lock{mutex};
                 seen_by_second = ctx.saved_checkpoint();
                 seen_in_task = ctx.task().checkpoint;
                 return success();
               },
               {.retry = fixed(5s, 3)});
  const TaskId id = add(env.q(), reg.spec("steps", json::object()));
  Worker worker{env.q(), reg, worker_options(log)};
  worker.run_until_idle();
  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.checkpoint == json{{"charged", true}});
  env.clock.advance(5s);
  worker.run_until_idle();
  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  std::lock_guard lock{mutex};
  CHECK(seen_by_second == json{{"charged", true}});
  CHECK(seen_in_task == json{{"charged", true}});
}

MIDAS_CONFORMANCE_CASE("run_until_idle returns while scheduled tasks are still pending") {
  Env env;
  LogLines log;
  std::atomic<int> calls{0};
  Registry reg;
  reg.add_json("job",
               [&](const json& params, TaskContext& ctx) -> result<void> {
                 ++calls;
                 if (params.value("fail_first", false) && ctx.attempt() == 1) {
                   throw std::runtime_error("first attempt fails");
                 }
                 return success();
               },
               {.retry = fixed(1h, 3)});
  const TaskId due = add(env.q(), reg.spec("job", json::object()));
  const TaskId later = add(env.q(), reg.spec("job", json::object(), {.delay = 1h}));
  const TaskId flaky = add(env.q(), reg.spec("job", json{{"fail_first", true}}));
  Worker worker{env.q(), reg, worker_options(log)};

  WorkerStats stats = worker.run_until_idle();
  CHECK(stats.claimed == 2);
  CHECK(calls.load() == 2);
  CHECK(ok(env.q().get(due)).status == TaskStatus::succeeded);
  CHECK(ok(env.q().get(later)).status == TaskStatus::pending);
  CHECK(ok(env.q().get(flaky)).status == TaskStatus::retrying);

  env.clock.advance(1h);
  stats = worker.run_until_idle();
  CHECK(stats.claimed == 2);
  CHECK(stats.succeeded == 2);
  CHECK(ok(env.q().get(later)).status == TaskStatus::succeeded);
  CHECK(ok(env.q().get(flaky)).status == TaskStatus::succeeded);
}

MIDAS_CONFORMANCE_CASE("a worker claims only from its own queues") {
  Env env;
  LogLines log;
  Registry reg;
  reg.add_json("elsewhere", succeed, {.queue = "other"});
  const TaskId id = add(env.q(), reg.spec("elsewhere", json::object()));
  CHECK(ok(env.q().get(id)).queue == "other");
  {
    Worker worker{env.q(), reg, worker_options(log, {"default"})};
    CHECK(worker.run_until_idle().claimed == 0);
  }
  CHECK(ok(env.q().get(id)).status == TaskStatus::pending);
  Worker other{env.q(), reg, worker_options(log, {"other"})};
  CHECK(other.run_until_idle().succeeded == 1);
  CHECK(ok(env.q().get(id)).status == TaskStatus::succeeded);
}

MIDAS_CONFORMANCE_CASE("a started worker runs tasks enqueued while it runs and stops cleanly") {
  Env env;
  LogLines log;
  std::mutex mutex;
  std::condition_variable cv;
  int calls = 0;
  Registry reg;
  reg.add_json("job", [&](const json&, TaskContext&) -> result<void> {
    std::lock_guard lock{mutex};
    ++calls;
    cv.notify_all();
    return success();
  });
  Worker worker{env.q(), reg, worker_options(log)};
  worker.start();
  std::vector<TaskId> tasks;
  for (int i = 0; i < 5; ++i) tasks.push_back(add(env.q(), reg.spec("job", json::object())));
  {
    // Waits for the handlers to have run, not for time to pass; the bound only stops a hang.
    std::unique_lock lock{mutex};
    CHECK(cv.wait_for(lock, 10s, [&] { return calls == 5; }));
  }
  worker.stop();
  CHECK(worker.stats().succeeded == 5);
  for (const TaskId& id : tasks) CHECK(ok(env.q().get(id)).status == TaskStatus::succeeded);
  worker.stop();  // twice is fine
  std::lock_guard lock{mutex};
  CHECK(calls == 5);
}

MIDAS_CONFORMANCE_CASE(
    "stop gives back tasks claimed ahead that no handler started: not run, attempt not counted") {
  Env env;
  LogLines log;
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  int started = 0;
  Registry reg;
  reg.add_json("job", [&](const json&, TaskContext&) -> result<void> {
    std::unique_lock lock{mutex};
    ++started;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return success();
  });
  WorkerOptions options = worker_options(log);
  options.concurrency = 1;
  options.prefetch = 2;
  const TaskId first = add(env.q(), reg.spec("job", json::object()));
  const TaskId second = add(env.q(), reg.spec("job", json::object()));
  const TaskId third = add(env.q(), reg.spec("job", json::object()));
  Worker worker{env.q(), reg, options};
  worker.start();
  {
    std::unique_lock lock{mutex};
    REQUIRE(cv.wait_for(lock, 10s, [&] { return started == 1; }));
  }
  // The one thread runs the first task; the two others are claimed ahead and wait for it.
  for (int i = 0; i < 500 && ok(env.q().get(third)).status != TaskStatus::running; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(ok(env.q().get(third)).status == TaskStatus::running);
  std::thread stopper{[&] { worker.stop(); }};
  std::this_thread::sleep_for(50ms);  // stop() gives the waiting ones back before it drains
  {
    std::lock_guard lock{mutex};
    release = true;
  }
  cv.notify_all();
  stopper.join();
  std::lock_guard lock{mutex};
  CHECK(started == 1);
  CHECK(ok(env.q().get(first)).status == TaskStatus::succeeded);
  for (const TaskId& id : {second, third}) {
    const Task t = ok(env.q().get(id));
    CHECK(t.status == TaskStatus::retrying);
    CHECK(t.attempt == 0);
    CHECK(t.run_at <= env.now());  // due again at once, in its place in line
    REQUIRE(t.history.size() == 1);
    CHECK(t.history[0].decision == "snooze");
    REQUIRE(t.history[0].error.has_value());
    CHECK(t.history[0].error->type == "shutdown");
  }
}

TEST_SUITE_END();
