// SPDX-License-Identifier: MIT
// DESIGN.md sections 1 and 3 at the Queue interface: what every backend must do the same way.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "conformance.hpp"

using namespace midas;
using namespace midas::testing;
using json = nlohmann::json;

TEST_SUITE_BEGIN("conformance");

// --- enqueue, get, validation ---

MIDAS_CONFORMANCE_CASE("a new queue is empty and an unknown id is task_not_found") {
  Env env;
  CHECK(ok(env.q().list({})).empty());
  CHECK(claim(env.q(), {"default"}, 10).empty());
  CHECK(err(env.q().get("no-such-task")) == errc::task_not_found);
  CHECK(err(env.q().get("12345")) == errc::task_not_found);
  CHECK(err(env.q().cancel("no-such-task")) == errc::task_not_found);
  CHECK(err(env.q().requeue("no-such-task")) == errc::task_not_found);
}

MIDAS_CONFORMANCE_CASE("an enqueued task is stored with its spec and the defaults") {
  Env env;
  const TimePoint t0 = env.now();
  TaskSpec s = spec("send-email", "mail");
  s.params = {{"to", "a@example.com"}, {"subject", "hi"}};
  s.priority = 3;
  s.unique_key = "welcome:42";
  const Enqueued e = ok(env.q().enqueue(s));
  CHECK_FALSE(e.id.empty());
  CHECK_FALSE(e.duplicate);

  const Task t = ok(env.q().get(e.id));
  CHECK(t.id == e.id);
  CHECK(t.type == "send-email");
  CHECK(t.queue == "mail");
  CHECK(t.params == s.params);
  CHECK(t.status == TaskStatus::pending);
  CHECK(t.attempt == 0);
  CHECK(t.max_attempts == default_max_attempts);
  CHECK(t.priority == 3);
  CHECK(t.run_at == t0);
  CHECK(t.unique_key == std::optional<std::string>{"welcome:42"});
  CHECK(t.created_at == t0);
  CHECK_FALSE(t.finished_at.has_value());
  CHECK_FALSE(t.lease_owner.has_value());
  CHECK_FALSE(t.lease_expires_at.has_value());
  CHECK(t.checkpoint.is_null());
  CHECK(t.history.empty());

  TaskSpec limited = spec("send-email", "mail");
  limited.max_attempts = 4;
  CHECK(ok(env.q().get(add(env.q(), limited))).max_attempts == 4);
}

MIDAS_CONFORMANCE_CASE("params round-trip through the backend unchanged") {
  Env env;
  TaskSpec s = spec("echo");
  s.params = json::parse(R"({
    "text": "Grüße, 世界 \"quoted\" \\ back\nslash",
    "int": -9007199254740991, "uint": 18446744073709551615, "float": 0.1,
    "flag": true, "none": null, "empty": {}, "list": [1, "two", [3], {"four": 4}],
    "nested": {"a": {"b": {"c": []}}}
  })");
  const TaskId id = add(env.q(), s);
  CHECK(ok(env.q().get(id)).params == s.params);
  CHECK(claim_one(env.q()).task.params == s.params);

  TaskSpec empty = spec("echo");
  CHECK(ok(env.q().get(add(env.q(), empty))).params == json::object());
}

MIDAS_CONFORMANCE_CASE("an invalid spec is rejected with invalid_argument and nothing is stored") {
  Env env;
  auto rejected = [&](TaskSpec s) { return err(env.q().enqueue(s)) == errc::invalid_argument; };
  CHECK(rejected(spec("")));
  CHECK(rejected(spec("has space")));
  CHECK(rejected(spec("slash/type")));
  CHECK(rejected(spec(std::string(129, 't'))));
  CHECK(rejected(spec("ok", "")));
  CHECK(rejected(spec("ok", "bad queue")));
  CHECK(rejected(spec("ok", "queue/with/slashes")));
  CHECK(rejected(spec("ok", std::string(129, 'q'))));
  TaskSpec negative = spec("ok");
  negative.max_attempts = -1;
  CHECK(rejected(negative));
  CHECK(ok(env.q().list({})).empty());

  // The limits themselves are fine.
  const TaskId id = add(env.q(), spec(std::string(128, 't'), "a-Z_0.9:x"));
  CHECK(ok(env.q().get(id)).queue == "a-Z_0.9:x");
}

MIDAS_CONFORMANCE_CASE("hostile strings in ids filters keys and params stay data") {
  // SQL and Redis protocol fragments must never be interpreted: ids and filters only ever reach
  // a statement as bound parameters or a key after validation, and params and unique keys are
  // stored as they are.
  Env env;
  const std::string sql = "x'); DELETE FROM midas_tasks; DROP TABLE midas_tasks; --";
  const std::string resp = "\r\n*1\r\n$8\r\nFLUSHALL\r\n";
  TaskSpec s = spec("job");
  s.params = {{"sql", sql}, {"redis", resp}, {"key", "{midas:default}:task:1"}};
  s.unique_key = sql + resp + "{midas:default}";
  const TaskId id = add(env.q(), s);

  for (const std::string& hostile :
       {sql, resp, std::string{"1 OR 1=1"}, std::string{"0; SELECT 1"}, std::string{"-1"},
        std::string{"default/1 OR 1=1"}, std::string{"{midas:default}/1"},
        std::string{"default/../1"}, std::string{"default/01"}, std::string{"default/"},
        std::string{"/1"}, id + "'", id + " ", id + "\n", std::string{}}) {
    CAPTURE(hostile);
    CHECK(err(env.q().get(hostile)) == errc::task_not_found);
    CHECK(err(env.q().cancel(hostile)) == errc::task_not_found);
    CHECK(err(env.q().requeue(hostile)) == errc::task_not_found);
    CHECK(ok(env.q().list({.queue = hostile})).empty());
    CHECK(ok(env.q().list({.type = hostile})).empty());
  }
  CHECK(ok(env.q().list({.queue = "default' OR '1'='1"})).empty());
  CHECK(ok(env.q().list({.type = "job' OR '1'='1"})).empty());

  // Still there, unchanged, and its unique key still holds.
  const Task t = ok(env.q().get(id));
  CHECK(t.params == s.params);
  CHECK(t.unique_key == s.unique_key);
  CHECK(ok(env.q().enqueue(s)).duplicate);
  CHECK(ok(env.q().list({})).size() == 1);
}

MIDAS_CONFORMANCE_CASE("params larger than max_params_bytes are payload_too_large") {
  Env env;
  TaskSpec big = spec("upload");
  big.params = {{"blob", std::string(max_params_bytes, 'x')}};
  CHECK(err(env.q().enqueue(big)) == errc::payload_too_large);
  CHECK(ok(env.q().list({})).empty());

  TaskSpec fits = spec("upload");
  fits.params = {{"blob", std::string(max_params_bytes - 64, 'x')}};
  const TaskId id = add(env.q(), fits);
  CHECK(ok(env.q().get(id)).params == fits.params);
}

// --- claim order and scheduling ---

MIDAS_CONFORMANCE_CASE("tasks of one priority are claimed first in first out") {
  Env env;
  std::vector<TaskId> enqueued;
  for (int i = 0; i < 12; ++i) {
    TaskSpec s = spec("fifo");
    s.params = {{"i", i}};
    enqueued.push_back(add(env.q(), s));
    env.clock.advance(1ms);
  }
  std::vector<TaskId> claimed;
  for (int i = 0; i < 12; ++i) claimed.push_back(claim_one(env.q()).task.id);
  CHECK(claimed == enqueued);
}

MIDAS_CONFORMANCE_CASE("tasks enqueued in the same instant are claimed in enqueue order") {
  Env env;
  std::vector<TaskId> enqueued;
  for (int i = 0; i < 12; ++i) enqueued.push_back(add(env.q(), spec("fifo")));
  CHECK(ids(claim(env.q(), {"default"}, 5)) ==
        std::vector<TaskId>(enqueued.begin(), enqueued.begin() + 5));
  CHECK(ids(claim(env.q(), {"default"}, 20)) ==
        std::vector<TaskId>(enqueued.begin() + 5, enqueued.end()));
}

MIDAS_CONFORMANCE_CASE("a lower priority number is claimed first whatever the enqueue order") {
  Env env;
  std::map<TaskId, int> priority_of;
  for (int p : {5, 0, 10, -3, 0}) {
    TaskSpec s = spec("prio");
    s.priority = p;
    priority_of[add(env.q(), s)] = p;
    env.clock.advance(1s);
  }
  std::vector<int> order;
  std::vector<TaskId> zeros;
  for (const auto& c : claim(env.q(), {"default"}, 10)) {
    order.push_back(priority_of.at(c.task.id));
    if (c.task.priority == 0) zeros.push_back(c.task.id);
    CHECK(c.task.priority == priority_of.at(c.task.id));
  }
  CHECK(order == std::vector<int>{-3, 0, 0, 5, 10});
  // Equal priorities stay first in, first out.
  REQUIRE(zeros.size() == 2);
  CHECK(ok(env.q().get(zeros[0])).created_at < ok(env.q().get(zeros[1])).created_at);
}

MIDAS_CONFORMANCE_CASE("a task scheduled for later does not block a due task of lower priority") {
  Env env;
  TaskSpec later = spec("prio");
  later.priority = -10;
  later.delay = 1h;
  const TaskId later_id = add(env.q(), later);
  TaskSpec due = spec("prio");
  due.priority = 10;
  const TaskId now_id = add(env.q(), due);
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{now_id});
  env.clock.advance(1h);
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{later_id});
}

MIDAS_CONFORMANCE_CASE(
    "a claim takes the first due tasks across priorities, skipping tasks scheduled for later") {
  Env env;
  auto add_with = [&](const char* name, int priority, std::chrono::seconds delay) {
    TaskSpec s = spec("mix");
    s.priority = priority;
    s.delay = delay;
    s.params = {{"name", name}};
    const TaskId id = add(env.q(), s);
    env.clock.advance(1ms);
    return id;
  };
  add_with("p2-later", 2, 1h);
  const TaskId p2a = add_with("p2-a", 2, 0s);
  const TaskId p0a = add_with("p0-a", 0, 0s);
  add_with("p1-later", 1, 1h);
  const TaskId p2b = add_with("p2-b", 2, 0s);
  add_with("p0-later", 0, 1h);
  const TaskId p0b = add_with("p0-b", 0, 0s);
  const TaskId p2c = add_with("p2-c", 2, 0s);
  // Four of the five due tasks, in priority order, first in first out within one.
  CHECK(ids(claim(env.q(), {"default"}, 4)) == std::vector<TaskId>{p0a, p0b, p2a, p2b});
  CHECK(ids(claim(env.q(), {"default"}, 4)) == std::vector<TaskId>{p2c});
  CHECK(claim(env.q(), {"default"}, 4).empty());
}

MIDAS_CONFORMANCE_CASE("a delayed task is not claimed before its run_at and is claimed once due") {
  Env env;
  const TimePoint t0 = env.now();
  TaskSpec delayed = spec("later");
  delayed.delay = 10s;
  const TaskId id = add(env.q(), delayed);
  CHECK(ok(env.q().get(id)).run_at == t0 + 10s);
  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(9999ms);
  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(1ms);
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{id});
}

MIDAS_CONFORMANCE_CASE("a task with an absolute run_at waits for it and run_at wins over delay") {
  Env env;
  const TimePoint t0 = env.now();
  TaskSpec s = spec("at");
  s.run_at = t0 + 1h;
  s.delay = 1s;  // ignored: run_at is set
  const TaskId id = add(env.q(), s);
  CHECK(ok(env.q().get(id)).run_at == t0 + 1h);
  env.clock.advance(59min);
  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(1min);
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{id});
}

MIDAS_CONFORMANCE_CASE("a run_at in the past is due immediately and ordered by that run_at") {
  Env env;
  const TaskId newer = add(env.q(), spec("past"));
  TaskSpec s = spec("past");
  s.run_at = env.now() - 1h;
  const TaskId older = add(env.q(), s);
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{older, newer});
}

MIDAS_CONFORMANCE_CASE("claim takes at most limit tasks and only from the queues asked for") {
  Env env;
  for (int i = 0; i < 3; ++i) add(env.q(), spec("x", "a"));
  for (int i = 0; i < 2; ++i) add(env.q(), spec("x", "b"));
  for (const auto& c : claim(env.q(), {"b"}, 10)) CHECK(c.task.queue == "b");
  CHECK(claim(env.q(), {"b"}, 10).empty());
  CHECK(claim(env.q(), {"a"}, 2).size() == 2);
  CHECK(claim(env.q(), {"a"}, 2).size() == 1);
  CHECK(claim(env.q(), {"a", "b", "c"}, 2).empty());
}

MIDAS_CONFORMANCE_CASE("claim serves the queues in the order asked") {
  Env env;
  TaskSpec urgent = spec("x", "a");
  urgent.priority = -5;
  const TaskId a1 = add(env.q(), urgent);
  const TaskId a2 = add(env.q(), urgent);
  const TaskId b1 = add(env.q(), spec("x", "b"));
  const TaskId b2 = add(env.q(), spec("x", "b"));
  CHECK(ids(claim(env.q(), {"b", "a"}, 3)) == std::vector<TaskId>{b1, b2, a1});
  CHECK(ids(claim(env.q(), {"b", "a"}, 3)) == std::vector<TaskId>{a2});
}

MIDAS_CONFORMANCE_CASE("a claimed task is running under a fresh lease and is not claimed again") {
  Env env;
  const TimePoint t0 = env.now();
  const TaskId id = add(env.q(), spec("job"));
  const auto claimed = claim(env.q(), {"default"}, 1, "w1", 30s);
  REQUIRE(claimed.size() == 1);
  const ClaimedTask& c = claimed.front();
  CHECK(c.task.id == id);
  CHECK(c.task.status == TaskStatus::running);
  CHECK(c.task.attempt == 1);
  CHECK(c.task.lease_owner == std::optional<std::string>{"w1"});
  CHECK(c.task.lease_expires_at == std::optional<TimePoint>{t0 + 30s});
  CHECK(c.lease.id == id);
  CHECK_FALSE(c.lease.token.empty());
  CHECK(c.lease.worker_id == "w1");
  CHECK(c.lease.expires_at == t0 + 30s);

  const Task stored = ok(env.q().get(id));
  CHECK(stored.status == TaskStatus::running);
  CHECK(stored.attempt == 1);
  CHECK(stored.lease_owner == std::optional<std::string>{"w1"});
  CHECK(stored.lease_expires_at == std::optional<TimePoint>{t0 + 30s});
  CHECK(claim(env.q(), {"default"}, 10, "w2").empty());
}

MIDAS_CONFORMANCE_CASE("every claim gets a different lease token") {
  Env env;
  const TaskId id = add(env.q(), spec("job"));
  std::set<std::string> tokens;
  for (int i = 0; i < 3; ++i) {
    ClaimedTask c = claim_one(env.q());
    CHECK(c.task.id == id);
    CHECK(c.task.attempt == i + 1);
    tokens.insert(c.lease.token);
    ok(env.q().settle(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now())));
  }
  CHECK(tokens.size() == 3);
}

// --- settling and history ---

MIDAS_CONFORMANCE_CASE("settling an attempt appends its record to the history exactly") {
  Env env;
  const TimePoint t0 = env.now();
  const TaskId id = add(env.q(), spec("job"));
  ClaimedTask first = claim_one(env.q());
  env.clock.advance(2s);
  Settlement retry;
  retry.status = TaskStatus::retrying;
  retry.run_at = t0 + 1min;
  retry.record = AttemptRecord{.attempt = 1,
                               .started_at = t0,
                               .finished_at = t0 + 2s,
                               .worker_id = "w1",
                               .error = ErrorInfo{.type = "midas::HttpError",
                                                  .message = "upstream said: \"busy\"",
                                                  .code = "http:503",
                                                  .http_status = 503},
                               .decision = "retry_after",
                               .next_run_at = t0 + 1min};
  ok(env.q().settle(first.lease, retry));

  Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 1);
  CHECK(t.run_at == t0 + 1min);
  CHECK_FALSE(t.lease_owner.has_value());
  CHECK_FALSE(t.finished_at.has_value());
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0] == retry.record);

  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(58s);
  ClaimedTask second = claim_one(env.q(), "default", "w2");
  CHECK(second.task.attempt == 2);
  CHECK(second.task.history.size() == 1);
  env.clock.advance(500ms);
  Settlement done;
  done.status = TaskStatus::succeeded;
  done.record = AttemptRecord{.attempt = 2,
                              .started_at = t0 + 1min,
                              .finished_at = t0 + 1min + 500ms,
                              .worker_id = "w2",
                              .error = {},
                              .decision = "succeeded",
                              .next_run_at = {}};
  ok(env.q().settle(second.lease, done));

  t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.attempt == 2);
  CHECK(t.finished_at == std::optional<TimePoint>{t0 + 1min + 500ms});
  CHECK_FALSE(t.lease_owner.has_value());
  CHECK_FALSE(t.lease_expires_at.has_value());
  CHECK(t.history == std::vector<AttemptRecord>{retry.record, done.record});
}

MIDAS_CONFORMANCE_CASE("a failed or cancelled settlement finishes the task") {
  Env env;
  for (TaskStatus status : {TaskStatus::failed, TaskStatus::cancelled}) {
    CAPTURE(status);
    ClaimedTask c = add_and_claim(env.q(), spec("job"));
    ok(env.q().settle(c.lease, settlement(c, status, env.now())));
    const Task t = ok(env.q().get(c.task.id));
    CHECK(t.status == status);
    CHECK(t.finished_at == std::optional<TimePoint>{env.now()});
    CHECK(t.history.size() == 1);
    CHECK(claim(env.q(), {"default"}, 10).empty());
  }
}

MIDAS_CONFORMANCE_CASE("a snoozed attempt is given back and does not count") {
  Env env;
  const TimePoint t0 = env.now();
  TaskSpec s = spec("job");
  s.max_attempts = 1;
  ClaimedTask c = add_and_claim(env.q(), s);
  CHECK(c.task.attempt == 1);
  Settlement snooze = settlement(c, TaskStatus::retrying, t0, t0 + 60s, "snooze");
  snooze.counts_attempt = false;
  snooze.record.error.reset();
  ok(env.q().settle(c.lease, snooze));

  Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 0);
  CHECK(t.run_at == t0 + 60s);
  CHECK(decisions(t) == std::vector<std::string>{"snooze"});
  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(60s);
  ClaimedTask again = claim_one(env.q());
  CHECK(again.task.attempt == 1);
}

// --- leases, fencing, rescue ---

MIDAS_CONFORMANCE_CASE("a lease expires strictly after its deadline and is listed by expired") {
  Env env;
  const std::vector<std::string> queues{"default"};
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  add_and_claim(env.q(), spec("job", "other"));
  CHECK(ok(env.q().expired(queues, 10)).empty());
  env.clock.advance(8s);
  CHECK(ok(env.q().expired(queues, 10)).empty());
  env.clock.advance(1ms);
  const auto expired = ok(env.q().expired(queues, 10));
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].task.id == c.task.id);
  CHECK(expired[0].task.status == TaskStatus::running);
  CHECK(expired[0].task.attempt == 1);
  CHECK(expired[0].lease.id == c.task.id);
  CHECK(expired[0].lease.token == c.lease.token);
  CHECK(expired[0].lease.worker_id == "w1");
  CHECK(expired[0].lease.expires_at == c.lease.expires_at);
  // The task in "other" expired too, but only the queues asked for are listed.
  const std::vector<std::string> both{"default", "other"};
  CHECK(ok(env.q().expired(both, 10)).size() == 2);
  CHECK(ok(env.q().expired(both, 1)).size() == 1);
}

MIDAS_CONFORMANCE_CASE("expired lists the oldest lease deadline first") {
  Env env;
  const std::vector<std::string> queues{"default"};
  ClaimedTask late = add_and_claim(env.q(), spec("job"));  // expires at t0 + 8s
  ClaimedTask c2 = add_and_claim(env.q(), spec("job"));
  ok(env.q().heartbeat(std::span<const Lease>{&late.lease, 1}, 30s));  // now t0 + 30s
  TaskId early = c2.task.id;
  env.clock.advance(1min);
  CHECK(ids(ok(env.q().expired(queues, 10))) == std::vector<TaskId>{early, late.task.id});
}

MIDAS_CONFORMANCE_CASE("an expired lease is rescued into the retry schedule and runs again") {
  Env env;
  const TimePoint t0 = env.now();
  const std::vector<std::string> queues{"default"};
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  env.clock.advance(9s);
  const auto expired = ok(env.q().expired(queues, 10));
  REQUIRE(expired.size() == 1);
  Settlement s = settlement(expired[0], TaskStatus::retrying, env.now(), env.now() + 5s);
  s.record.error = ErrorInfo{.type = "lease_expired",
                             .message = "lease expired at " + format_time(c.lease.expires_at),
                             .code = {},
                             .http_status = {}};
  ok(env.q().rescue(expired[0].lease, s));

  Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::retrying);
  CHECK(t.attempt == 1);
  CHECK(t.run_at == t0 + 14s);
  CHECK_FALSE(t.lease_owner.has_value());
  REQUIRE(t.history.size() == 1);
  CHECK(t.history[0] == s.record);
  CHECK(ok(env.q().expired(queues, 10)).empty());
  CHECK(claim(env.q(), {"default"}, 10).empty());
  env.clock.advance(5s);
  ClaimedTask again = claim_one(env.q(), "default", "w2");
  CHECK(again.task.id == c.task.id);
  CHECK(again.task.attempt == 2);
}

MIDAS_CONFORMANCE_CASE("an expired lease can be rescued as failed") {
  Env env;
  TaskSpec s = spec("job");
  s.max_attempts = 1;
  ClaimedTask c = add_and_claim(env.q(), s);
  env.clock.advance(9s);
  ok(env.q().rescue(c.lease, settlement(c, TaskStatus::failed, env.now())));
  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::failed);
  CHECK(t.finished_at == std::optional<TimePoint>{env.now()});
  CHECK(decisions(t) == std::vector<std::string>{"fail"});
}

MIDAS_CONFORMANCE_CASE("rescue is refused while the lease is still valid") {
  Env env;
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  env.clock.advance(8s);  // at the deadline, not past it
  CHECK(err(env.q().rescue(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now()))) ==
        errc::lease_lost);
  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::running);
  CHECK(t.history.empty());
  // The owner still holds it.
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::succeeded, env.now())));
}

MIDAS_CONFORMANCE_CASE("a lease renewed after it expired can no longer be rescued") {
  Env env;
  const std::vector<std::string> queues{"default"};
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  env.clock.advance(9s);
  const auto expired = ok(env.q().expired(queues, 10));
  REQUIRE(expired.size() == 1);
  // The owner was only slow: its heartbeat lands before the rescuer acts.
  CHECK(ok(env.q().heartbeat(std::span<const Lease>{&c.lease, 1}, 8s)).empty());
  CHECK(err(env.q().rescue(expired[0].lease, settlement(expired[0], TaskStatus::retrying, env.now(),
                                                        env.now()))) == errc::lease_lost);
  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::running);
  CHECK(t.history.empty());
  CHECK(ok(env.q().expired(queues, 10)).empty());
}

MIDAS_CONFORMANCE_CASE("heartbeat extends the lease so a heartbeated task is not expired") {
  Env env;
  const TimePoint t0 = env.now();
  const std::vector<std::string> queues{"default"};
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  env.clock.advance(6s);
  CHECK(ok(env.q().heartbeat(std::span<const Lease>{&c.lease, 1}, 8s)).empty());
  CHECK(ok(env.q().get(c.task.id)).lease_expires_at == std::optional<TimePoint>{t0 + 14s});
  env.clock.advance(6s);  // 12 s after the claim: the first lease would be gone by now
  CHECK(ok(env.q().expired(queues, 10)).empty());

  TaskContext ctx{env.q(), c, {}, 8s};
  ok(ctx.heartbeat());  // now t0 + 20 s
  env.clock.advance(7s);
  CHECK(ok(env.q().expired(queues, 10)).empty());
  env.clock.advance(2s);
  CHECK(ids(ok(env.q().expired(queues, 10))) == std::vector<TaskId>{c.task.id});
}

MIDAS_CONFORMANCE_CASE("heartbeat renews many leases at once and reports the ones it lost") {
  Env env;
  ClaimedTask a = add_and_claim(env.q(), spec("job"));
  ClaimedTask b = add_and_claim(env.q(), spec("job"));
  ClaimedTask done = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(done.lease, settlement(done, TaskStatus::succeeded, env.now())));
  Lease forged = b.lease;
  forged.token = "forged-" + b.lease.token;
  Lease unknown = a.lease;
  unknown.id = "no-such-task";
  const std::vector<Lease> leases{a.lease, forged, done.lease, unknown};
  auto lost = ok(env.q().heartbeat(leases, 1min));
  std::sort(lost.begin(), lost.end());
  std::vector<TaskId> expected{b.task.id, done.task.id, "no-such-task"};
  std::sort(expected.begin(), expected.end());
  CHECK(lost == expected);
  CHECK(ok(env.q().get(a.task.id)).lease_expires_at == std::optional<TimePoint>{env.now() + 1min});
  CHECK(ok(env.q().get(b.task.id)).lease_expires_at == std::optional<TimePoint>{env.now() + 8s});
}

MIDAS_CONFORMANCE_CASE(
    "a stale lease cannot complete retry fail or touch a task another claimer took") {
  Env env;
  const std::vector<std::string> queues{"default"};
  ClaimedTask stale = add_and_claim(env.q(), spec("job"), "w1");
  env.clock.advance(9s);
  const auto expired = ok(env.q().expired(queues, 10));
  REQUIRE(expired.size() == 1);
  ok(env.q().rescue(expired[0].lease,
                    settlement(expired[0], TaskStatus::retrying, env.now(), env.now())));
  ClaimedTask fresh = claim_one(env.q(), "default", "w2");
  REQUIRE(fresh.task.id == stale.task.id);
  CHECK(fresh.task.attempt == 2);
  CHECK(fresh.lease.token != stale.lease.token);

  const TimePoint now = env.now();
  for (TaskStatus status :
       {TaskStatus::succeeded, TaskStatus::retrying, TaskStatus::failed, TaskStatus::cancelled}) {
    CAPTURE(status);
    CHECK(err(env.q().settle(stale.lease, settlement(stale, status, now, now + 1s))) ==
          errc::lease_lost);
  }
  CHECK(err(env.q().checkpoint(stale.lease, json{{"step", "stale"}})) == errc::lease_lost);
  CHECK(ok(env.q().heartbeat(std::span<const Lease>{&stale.lease, 1}, 1h)) ==
        std::vector<TaskId>{stale.task.id});
  env.clock.advance(1min);  // the fresh lease has expired too, but not under the stale token
  CHECK(err(env.q().rescue(stale.lease, settlement(stale, TaskStatus::failed, env.now()))) ==
        errc::lease_lost);
  TaskContext stale_ctx{env.q(), stale, {}, 8s};
  CHECK(err(stale_ctx.heartbeat()) == errc::lease_lost);
  CHECK(err(stale_ctx.checkpoint(json{{"step", "stale"}})) == errc::lease_lost);

  Task t = ok(env.q().get(stale.task.id));
  CHECK(t.status == TaskStatus::running);
  CHECK(t.attempt == 2);
  CHECK(t.lease_owner == std::optional<std::string>{"w2"});
  CHECK(t.lease_expires_at == std::optional<TimePoint>{fresh.lease.expires_at});
  CHECK(t.checkpoint.is_null());
  CHECK(t.history.size() == 1);

  // The new owner still completes it (its lease is past due but nobody rescued it).
  ok(env.q().settle(fresh.lease, settlement(fresh, TaskStatus::succeeded, env.now())));
  t = ok(env.q().get(stale.task.id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(decisions(t) == std::vector<std::string>{"retry", "succeeded"});
}

MIDAS_CONFORMANCE_CASE("a forged or used-up lease cannot settle or checkpoint") {
  Env env;
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  Lease forged = c.lease;
  forged.token = "not-the-token";
  Lease no_token = c.lease;
  no_token.token.clear();
  Lease unknown = c.lease;
  unknown.id = "no-such-task";
  for (const Lease& l : {forged, no_token, unknown}) {
    CHECK(err(env.q().settle(l, settlement(c, TaskStatus::succeeded, env.now()))) ==
          errc::lease_lost);
    CHECK(err(env.q().checkpoint(l, json{{"x", 1}})) == errc::lease_lost);
  }
  CHECK(ok(env.q().get(c.task.id)).status == TaskStatus::running);

  ok(env.q().settle(c.lease, settlement(c, TaskStatus::succeeded, env.now())));
  // The lease ended with the attempt: settling twice is refused and changes nothing.
  CHECK(err(env.q().settle(c.lease, settlement(c, TaskStatus::failed, env.now()))) ==
        errc::lease_lost);
  CHECK(err(env.q().checkpoint(c.lease, json{{"x", 2}})) == errc::lease_lost);
  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::succeeded);
  CHECK(t.history.size() == 1);
  CHECK(t.checkpoint.is_null());
}

// --- checkpoints ---

MIDAS_CONFORMANCE_CASE("a checkpoint is stored under the lease and seen by the next attempt") {
  Env env;
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  CHECK(c.task.checkpoint.is_null());
  ok(env.q().checkpoint(c.lease, json{{"step", 1}}));
  CHECK(ok(env.q().get(c.task.id)).checkpoint == json{{"step", 1}});
  const json progress = {{"step", 2}, {"done", {"charge", "email"}}};
  TaskContext ctx{env.q(), c, {}, 8s};
  ok(ctx.checkpoint(progress));
  CHECK(ctx.saved_checkpoint() == progress);
  CHECK(ok(env.q().get(c.task.id)).checkpoint == progress);
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now())));

  ClaimedTask next = claim_one(env.q());
  CHECK(next.task.attempt == 2);
  CHECK(next.task.checkpoint == progress);
  TaskContext next_ctx{env.q(), next, {}, 8s};
  CHECK(next_ctx.saved_checkpoint() == progress);
}

MIDAS_CONFORMANCE_CASE("a checkpoint survives a lease expiry and rescue") {
  Env env;
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  ok(env.q().checkpoint(c.lease, json{{"step", 3}}));
  env.clock.advance(9s);
  ok(env.q().rescue(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now())));
  CHECK(claim_one(env.q()).task.checkpoint == json{{"step", 3}});
}

// --- unique keys ---

MIDAS_CONFORMANCE_CASE("a duplicate unique key returns the existing task and stores nothing") {
  Env env;
  TaskSpec first = spec("join", "joins");
  first.unique_key = "join:user-1";
  first.params = {{"attempt", "first"}};
  const Enqueued a = ok(env.q().enqueue(first));
  CHECK_FALSE(a.duplicate);
  TaskSpec second = first;
  second.params = {{"attempt", "second"}};
  second.priority = -1;
  const Enqueued b = ok(env.q().enqueue(second));
  CHECK(b.duplicate);
  CHECK(b.id == a.id);
  const auto all = ok(env.q().list({}));
  REQUIRE(all.size() == 1);
  CHECK(all[0].params == first.params);
  CHECK(all[0].priority == 0);

  // Without a key, equal specs are distinct tasks.
  const TaskId x = add(env.q(), spec("join", "joins"));
  const TaskId y = add(env.q(), spec("join", "joins"));
  CHECK(x != y);
}

MIDAS_CONFORMANCE_CASE("unique keys in different queues do not collide") {
  Env env;
  TaskSpec a = spec("join", "a");
  a.unique_key = "same-key";
  TaskSpec b = spec("join", "b");
  b.unique_key = "same-key";
  const Enqueued ea = ok(env.q().enqueue(a));
  const Enqueued eb = ok(env.q().enqueue(b));
  CHECK_FALSE(ea.duplicate);
  CHECK_FALSE(eb.duplicate);
  CHECK(ea.id != eb.id);
  CHECK(ok(env.q().enqueue(b)) == Enqueued{eb.id, true});
}

MIDAS_CONFORMANCE_CASE("a unique key stays held while its task runs or waits to retry") {
  Env env;
  TaskSpec s = spec("join");
  s.unique_key = "k";
  ClaimedTask c = add_and_claim(env.q(), s);
  CHECK(ok(env.q().enqueue(s)) == Enqueued{c.task.id, true});
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now() + 1h)));
  CHECK(ok(env.q().enqueue(s)) == Enqueued{c.task.id, true});
  env.clock.advance(9s);
  CHECK(ok(env.q().enqueue(s)) == Enqueued{c.task.id, true});
  CHECK(ok(env.q().list({})).size() == 1);
}

MIDAS_CONFORMANCE_CASE("a unique key is free again once its task finished") {
  Env env;
  TaskSpec s = spec("join");
  s.unique_key = "k";
  const TaskId first = add(env.q(), s);
  TaskStatus finished_as = TaskStatus::pending;
  SUBCASE("succeeded") { finished_as = TaskStatus::succeeded; }
  SUBCASE("failed") { finished_as = TaskStatus::failed; }
  SUBCASE("cancelled by the handler") { finished_as = TaskStatus::cancelled; }
  SUBCASE("cancelled by an operator") {}
  CAPTURE(finished_as);
  if (finished_as == TaskStatus::pending) {
    ok(env.q().cancel(first));
  } else {
    ClaimedTask c = claim_one(env.q());
    ok(env.q().settle(c.lease, settlement(c, finished_as, env.now())));
  }
  const Enqueued again = ok(env.q().enqueue(s));
  CHECK_FALSE(again.duplicate);
  CHECK(again.id != first);
  CHECK(ok(env.q().get(again.id)).status == TaskStatus::pending);
  CHECK(ok(env.q().enqueue(s)) == Enqueued{again.id, true});
}

// --- enqueue_batch ---

MIDAS_CONFORMANCE_CASE("enqueue_batch stores every spec and returns results in their order") {
  Env env;
  std::vector<TaskSpec> specs;
  for (int i = 0; i < 5; ++i) {
    TaskSpec s = spec("batch-" + std::to_string(i), i % 2 == 0 ? "even" : "odd");
    s.params = {{"i", i}};
    s.priority = 5 - i;
    specs.push_back(s);
  }
  const auto results = ok(env.q().enqueue_batch(specs));
  REQUIRE(results.size() == specs.size());
  std::set<TaskId> distinct;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    CAPTURE(i);
    CHECK_FALSE(results[i].duplicate);
    distinct.insert(results[i].id);
    const Task t = ok(env.q().get(results[i].id));
    CHECK(t.type == specs[i].type);
    CHECK(t.queue == specs[i].queue);
    CHECK(t.params == specs[i].params);
    CHECK(t.priority == specs[i].priority);
  }
  CHECK(distinct.size() == specs.size());
  CHECK(ok(env.q().enqueue_batch({})).empty());
}

MIDAS_CONFORMANCE_CASE("enqueue_batch stores nothing when one spec is invalid") {
  Env env;
  std::vector<TaskSpec> specs{spec("ok"), spec(""), spec("ok")};
  CHECK(err(env.q().enqueue_batch(specs)) == errc::invalid_argument);
  specs[1] = spec("ok", "bad queue");
  CHECK(err(env.q().enqueue_batch(specs)) == errc::invalid_argument);
  specs[1] = spec("ok");
  specs[1].params = {{"blob", std::string(max_params_bytes + 1, 'x')}};
  CHECK(err(env.q().enqueue_batch(specs)) == errc::payload_too_large);
  CHECK(ok(env.q().list({})).empty());
  CHECK(claim(env.q(), {"default"}, 10).empty());
}

MIDAS_CONFORMANCE_CASE("enqueue_batch deduplicates unique keys against stored tasks and itself") {
  Env env;
  TaskSpec keyed = spec("join");
  keyed.unique_key = "k1";
  const TaskId existing = add(env.q(), keyed);
  TaskSpec other = spec("join");
  other.unique_key = "k2";
  const std::vector<TaskSpec> specs{spec("plain"), keyed, other, other};
  const auto results = ok(env.q().enqueue_batch(specs));
  REQUIRE(results.size() == 4);
  CHECK_FALSE(results[0].duplicate);
  CHECK(results[1] == Enqueued{existing, true});
  CHECK_FALSE(results[2].duplicate);
  CHECK(results[3] == Enqueued{results[2].id, true});
  CHECK(ok(env.q().list({})).size() == 3);
}

// --- concurrency ---

MIDAS_CONFORMANCE_CASE("concurrent claimers never receive the same task") {
  Env env;
  constexpr std::size_t task_count = 300;
  constexpr int thread_count = 4;
  std::vector<TaskSpec> specs(task_count, spec("race"));
  std::set<TaskId> enqueued;
  for (const auto& e : ok(env.q().enqueue_batch(specs))) enqueued.insert(e.id);
  REQUIRE(enqueued.size() == task_count);

  std::vector<std::vector<TaskId>> got(thread_count);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int n = 0; n < thread_count; ++n) {
    threads.emplace_back([&, n] {
      ClaimRequest request{.queues = {"default"},
                           .limit = static_cast<std::size_t>(n + 1),
                           .worker_id = "claimer-" + std::to_string(n),
                           .lease = 1min};
      for (;;) {
        auto claimed = env.q().claim(request);
        if (!claimed) {
          ++errors;
          return;
        }
        if (claimed.value().empty()) return;
        for (const auto& c : claimed.value()) {
          got[static_cast<std::size_t>(n)].push_back(c.task.id);
          if (c.task.attempt != 1) ++errors;
          if (!env.q().settle(c.lease, settlement(c, TaskStatus::succeeded, env.now()))) ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  CHECK(errors.load() == 0);
  std::map<TaskId, int> times;
  std::size_t total = 0;
  for (const auto& v : got) {
    total += v.size();
    for (const auto& id : v) ++times[id];
  }
  CHECK(total == task_count);
  std::set<TaskId> claimed_ids;
  for (const auto& [id, n] : times) {
    if (n != 1) FAIL_CHECK("task " << id << " was claimed " << n << " times");
    claimed_ids.insert(id);
  }
  CHECK(claimed_ids == enqueued);
  const auto s = find_queue(ok(env.q().stats("default")), "default");
  REQUIRE(s.has_value());
  CHECK(s->succeeded == task_count);
  CHECK(s->pending + s->running + s->retrying == 0);
}

MIDAS_CONFORMANCE_CASE("concurrent enqueues with one unique key store one task") {
  Env env;
  TaskSpec s = spec("join");
  s.unique_key = "contended";
  std::vector<Enqueued> results(8);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (std::size_t n = 0; n < results.size(); ++n) {
    threads.emplace_back([&, n] {
      auto r = env.q().enqueue(s);
      if (r) {
        results[n] = r.value();
      } else {
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(errors.load() == 0);
  const auto fresh =
      std::count_if(results.begin(), results.end(), [](const Enqueued& e) { return !e.duplicate; });
  CHECK(fresh == 1);
  for (const auto& e : results) CHECK(e.id == results.front().id);
  CHECK(ok(env.q().list({})).size() == 1);
}

// --- cancel and requeue ---

MIDAS_CONFORMANCE_CASE("cancel ends a pending task and it is never claimed") {
  Env env;
  TaskSpec delayed = spec("job");
  delayed.delay = 1min;
  const TaskId due = add(env.q(), spec("job"));
  const TaskId later = add(env.q(), delayed);
  env.clock.advance(1s);
  ok(env.q().cancel(due));
  ok(env.q().cancel(later));
  for (const TaskId& id : {due, later}) {
    const Task t = ok(env.q().get(id));
    CHECK(t.status == TaskStatus::cancelled);
    CHECK(t.finished_at == std::optional<TimePoint>{env.now()});
  }
  env.clock.advance(1h);
  CHECK(claim(env.q(), {"default"}, 10).empty());
}

MIDAS_CONFORMANCE_CASE("cancel ends a retrying task and keeps its history") {
  Env env;
  ClaimedTask c = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now() + 1min)));
  ok(env.q().cancel(c.task.id));
  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::cancelled);
  CHECK(t.attempt == 1);
  CHECK(decisions(t) == std::vector<std::string>{"retry"});
  env.clock.advance(1h);
  CHECK(claim(env.q(), {"default"}, 10).empty());
}

MIDAS_CONFORMANCE_CASE("cancelling a cancelled task succeeds and changes nothing") {
  Env env;
  const TaskId id = add(env.q(), spec("job"));
  ok(env.q().cancel(id));
  const Task before = ok(env.q().get(id));
  env.clock.advance(1min);
  ok(env.q().cancel(id));
  const Task after = ok(env.q().get(id));
  CHECK(after.status == TaskStatus::cancelled);
  CHECK(after.finished_at == before.finished_at);
}

MIDAS_CONFORMANCE_CASE("a running or finished task cannot be cancelled") {
  Env env;
  ClaimedTask running = add_and_claim(env.q(), spec("job"));
  CHECK(err(env.q().cancel(running.task.id)) == errc::invalid_state);
  CHECK(ok(env.q().get(running.task.id)).status == TaskStatus::running);
  // The lease is untouched: its owner still settles.
  ok(env.q().settle(running.lease, settlement(running, TaskStatus::succeeded, env.now())));
  CHECK(err(env.q().cancel(running.task.id)) == errc::invalid_state);
  CHECK(ok(env.q().get(running.task.id)).status == TaskStatus::succeeded);

  ClaimedTask failing = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(failing.lease, settlement(failing, TaskStatus::failed, env.now())));
  CHECK(err(env.q().cancel(failing.task.id)) == errc::invalid_state);
  CHECK(ok(env.q().get(failing.task.id)).status == TaskStatus::failed);
}

MIDAS_CONFORMANCE_CASE("requeue puts a failed task back to pending with its history") {
  Env env;
  TaskSpec s = spec("job");
  s.max_attempts = 2;
  ClaimedTask c = add_and_claim(env.q(), s);
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::retrying, env.now(), env.now())));
  ClaimedTask last = claim_one(env.q());
  ok(env.q().checkpoint(last.lease, json{{"step", 1}}));
  ok(env.q().settle(last.lease, settlement(last, TaskStatus::failed, env.now())));
  env.clock.advance(1h);
  ok(env.q().requeue(c.task.id));

  const Task t = ok(env.q().get(c.task.id));
  CHECK(t.status == TaskStatus::pending);
  CHECK(t.attempt == 0);
  CHECK(t.run_at == env.now());
  CHECK_FALSE(t.finished_at.has_value());
  CHECK(decisions(t) == std::vector<std::string>{"retry", "fail"});
  ClaimedTask again = claim_one(env.q());
  CHECK(again.task.id == c.task.id);
  CHECK(again.task.attempt == 1);
  CHECK(again.task.max_attempts == 2);
}

MIDAS_CONFORMANCE_CASE("requeue puts a cancelled task back to pending") {
  Env env;
  TaskSpec s = spec("job");
  s.delay = 1h;
  const TaskId id = add(env.q(), s);
  ok(env.q().cancel(id));
  env.clock.advance(1min);
  ok(env.q().requeue(id));
  const Task t = ok(env.q().get(id));
  CHECK(t.status == TaskStatus::pending);
  CHECK(t.run_at == env.now());
  CHECK(ids(claim(env.q(), {"default"}, 10)) == std::vector<TaskId>{id});
}

MIDAS_CONFORMANCE_CASE("requeue is refused for pending running retrying and succeeded tasks") {
  Env env;
  const TaskId pending = add(env.q(), spec("job", "p"));
  CHECK(err(env.q().requeue(pending)) == errc::invalid_state);
  ClaimedTask running = add_and_claim(env.q(), spec("job"));
  CHECK(err(env.q().requeue(running.task.id)) == errc::invalid_state);
  ok(env.q().settle(running.lease,
                    settlement(running, TaskStatus::retrying, env.now(), env.now() + 1h)));
  CHECK(err(env.q().requeue(running.task.id)) == errc::invalid_state);
  env.clock.advance(1h);
  ClaimedTask again = claim_one(env.q());
  ok(env.q().settle(again.lease, settlement(again, TaskStatus::succeeded, env.now())));
  CHECK(err(env.q().requeue(running.task.id)) == errc::invalid_state);
  CHECK(ok(env.q().get(pending)).status == TaskStatus::pending);
  CHECK(ok(env.q().get(running.task.id)).status == TaskStatus::succeeded);
}

MIDAS_CONFORMANCE_CASE("requeue is refused while another unfinished task holds the unique key") {
  Env env;
  TaskSpec s = spec("join");
  s.unique_key = "k";
  ClaimedTask old = add_and_claim(env.q(), s);
  ok(env.q().settle(old.lease, settlement(old, TaskStatus::failed, env.now())));
  ClaimedTask holder = add_and_claim(env.q(), s);
  CHECK(holder.task.id != old.task.id);
  CHECK(err(env.q().requeue(old.task.id)) == errc::duplicate_task);
  CHECK(ok(env.q().get(old.task.id)).status == TaskStatus::failed);

  ok(env.q().settle(holder.lease, settlement(holder, TaskStatus::succeeded, env.now())));
  ok(env.q().requeue(old.task.id));
  CHECK(ok(env.q().get(old.task.id)).status == TaskStatus::pending);
  // The requeued task holds the key again.
  CHECK(ok(env.q().enqueue(s)) == Enqueued{old.task.id, true});
}

// --- prune ---

MIDAS_CONFORMANCE_CASE("prune deletes only finished tasks that finished before the cutoff") {
  Env env;
  const TimePoint t0 = env.now();
  ClaimedTask a = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(a.lease, settlement(a, TaskStatus::succeeded, env.now())));
  ClaimedTask b = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(b.lease, settlement(b, TaskStatus::failed, env.now())));
  const TaskId cancelled = add(env.q(), spec("job", "other"));
  ok(env.q().cancel(cancelled));
  const TaskId pending = add(env.q(), spec("job", "idle"));
  ClaimedTask running = add_and_claim(env.q(), spec("job"));
  ClaimedTask retrying = add_and_claim(env.q(), spec("job"));
  ok(env.q().settle(retrying.lease,
                    settlement(retrying, TaskStatus::retrying, env.now(), env.now() + 1h)));
  env.clock.advance(1h);
  ClaimedTask recent = add_and_claim(env.q(), spec("job", "recent"));
  ok(env.q().settle(recent.lease, settlement(recent, TaskStatus::succeeded, env.now())));
  env.clock.advance(1h);

  CHECK(ok(env.q().prune(t0 + 30min, 100)) == 3);
  for (const TaskId& id : {a.task.id, b.task.id, cancelled}) {
    CHECK(err(env.q().get(id)) == errc::task_not_found);
  }
  for (const TaskId& id : {pending, running.task.id, retrying.task.id, recent.task.id}) {
    CHECK(ok(env.q().get(id)).id == id);
  }
  CHECK(ok(env.q().prune(t0 + 30min, 100)) == 0);
  CHECK(ok(env.q().list({})).size() == 4);
}

MIDAS_CONFORMANCE_CASE("prune deletes at most limit tasks per call") {
  Env env;
  for (int i = 0; i < 5; ++i) ok(env.q().cancel(add(env.q(), spec("job"))));
  env.clock.advance(1min);
  CHECK(ok(env.q().prune(env.now(), 2)) == 2);
  CHECK(ok(env.q().list({})).size() == 3);
  CHECK(ok(env.q().prune(env.now(), 2)) == 2);
  CHECK(ok(env.q().prune(env.now(), 2)) == 1);
  CHECK(ok(env.q().prune(env.now(), 2)) == 0);
  CHECK(ok(env.q().list({})).empty());
}

// --- stats ---

MIDAS_CONFORMANCE_CASE("stats count tasks per queue and status with the oldest due age") {
  Env env;
  // Queue "r": one task waiting to retry at t0 + 1h.
  ClaimedTask retry = add_and_claim(env.q(), spec("job", "r"));
  ok(env.q().settle(retry.lease,
                    settlement(retry, TaskStatus::retrying, env.now(), env.now() + 1h)));
  // Queue "a": one task of every status, plus a scheduled pending one.
  std::vector<ClaimedTask> c;
  for (int i = 0; i < 4; ++i) c.push_back(add_and_claim(env.q(), spec("job", "a")));
  ok(env.q().settle(c[1].lease, settlement(c[1], TaskStatus::retrying, env.now(), env.now() + 1h)));
  ok(env.q().settle(c[2].lease, settlement(c[2], TaskStatus::succeeded, env.now())));
  ok(env.q().settle(c[3].lease, settlement(c[3], TaskStatus::failed, env.now())));
  add(env.q(), spec("job", "a"));  // due, waiting: the oldest due task
  TaskSpec scheduled = spec("job", "a");
  scheduled.delay = 1h;
  add(env.q(), scheduled);
  ok(env.q().cancel(add(env.q(), spec("job", "a"))));
  env.clock.advance(10s);
  add(env.q(), spec("job", "b"));
  TaskSpec later = spec("job", "c");
  later.delay = 1h;
  add(env.q(), later);
  env.clock.advance(20s);

  const Stats all = ok(env.q().stats(std::nullopt));
  const auto a = find_queue(all, "a");
  REQUIRE(a.has_value());
  CHECK(a->pending == 2);
  CHECK(a->running == 1);
  CHECK(a->retrying == 1);
  CHECK(a->succeeded == 1);
  CHECK(a->failed == 1);
  CHECK(a->cancelled == 1);
  CHECK(a->oldest_due_age == std::optional<Duration>{30s});
  const auto b = find_queue(all, "b");
  REQUIRE(b.has_value());
  CHECK(b->pending == 1);
  CHECK(b->running + b->retrying + b->succeeded + b->failed + b->cancelled == 0);
  CHECK(b->oldest_due_age == std::optional<Duration>{20s});
  const auto cq = find_queue(all, "c");
  REQUIRE(cq.has_value());
  CHECK(cq->pending == 1);
  CHECK_FALSE(cq->oldest_due_age.has_value());

  const Stats only_b = ok(env.q().stats("b"));
  REQUIRE(only_b.queues.size() == 1);
  CHECK(only_b.queues[0].queue == "b");
  CHECK(only_b.queues[0].pending == 1);

  const auto r = find_queue(all, "r");
  REQUIRE(r.has_value());
  CHECK(r->retrying == 1);
  CHECK_FALSE(r->oldest_due_age.has_value());

  // Once due, scheduled and retrying tasks count for the oldest due age too, from their run_at.
  env.clock.advance(2h);  // now t0 + 2h30s
  const auto a_later = find_queue(ok(env.q().stats("a")), "a");
  REQUIRE(a_later.has_value());
  CHECK(a_later->oldest_due_age == std::optional<Duration>{2h + 30s});
  const auto c_later = find_queue(ok(env.q().stats("c")), "c");
  REQUIRE(c_later.has_value());
  CHECK(c_later->oldest_due_age == std::optional<Duration>{1h + 20s});
  const auto r_later = find_queue(ok(env.q().stats("r")), "r");
  REQUIRE(r_later.has_value());
  CHECK(r_later->oldest_due_age == std::optional<Duration>{1h + 30s});
}

// --- list and get ---

MIDAS_CONFORMANCE_CASE("list returns the newest tasks first and filters by queue status and type") {
  Env env;
  // #1 x/a, #2 y/a, #3 x/b, #4 y/b, #5 x/a, #6 y/a, one second apart.
  std::vector<TaskId> id;
  const std::vector<std::pair<std::string, std::string>> layout{{"x", "a"}, {"y", "a"}, {"x", "b"},
                                                                {"y", "b"}, {"x", "a"}, {"y", "a"}};
  for (const auto& [type, queue] : layout) {
    id.push_back(add(env.q(), spec(type, queue)));
    env.clock.advance(1s);
  }
  ClaimedTask c = claim_one(env.q(), "b");  // #3
  REQUIRE(c.task.id == id[2]);
  ok(env.q().settle(c.lease, settlement(c, TaskStatus::succeeded, env.now())));

  using V = std::vector<TaskId>;
  CHECK(ids(ok(env.q().list({}))) == V{id[5], id[4], id[3], id[2], id[1], id[0]});
  CHECK(ids(ok(env.q().list({.queue = "a"}))) == V{id[5], id[4], id[1], id[0]});
  CHECK(ids(ok(env.q().list({.type = "x"}))) == V{id[4], id[2], id[0]});
  CHECK(ids(ok(env.q().list({.status = TaskStatus::succeeded}))) == V{id[2]});
  CHECK(ids(ok(env.q().list({.queue = "b", .status = TaskStatus::pending}))) == V{id[3]});
  CHECK(ids(ok(env.q().list({.queue = "a", .type = "y"}))) == V{id[5], id[1]});
  CHECK(ids(ok(env.q().list({.limit = 2}))) == V{id[5], id[4]});
  CHECK(ids(ok(env.q().list({.limit = 2, .offset = 1}))) == V{id[4], id[3]});
  CHECK(ids(ok(env.q().list({.type = "x", .limit = 1, .offset = 1}))) == V{id[2]});
  CHECK(ok(env.q().list({.offset = 6})).empty());
  CHECK(ok(env.q().list({.queue = "nowhere"})).empty());
  CHECK(ok(env.q().list({.status = TaskStatus::failed})).empty());

  const auto listed = ok(env.q().list({.status = TaskStatus::succeeded}));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].history.size() == 1);
  CHECK(listed[0].type == "x");
  CHECK(listed[0].queue == "b");
}

TEST_SUITE_END();
