// SPDX-License-Identifier: MIT
// The Redis backend against real servers: the shared one MIDAS_TEST_REDIS_URL names (a key prefix
// per case), and private redis-servers a case starts itself to restart, flush, pause or
// misconfigure. Every case is skipped (and reported so) when MIDAS_TEST_REDIS_URL is unset.
#include <doctest/doctest.h>
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <midas/midas.hpp>
#include <midas/redis.hpp>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "redis_support.hpp"

using namespace midas;
using namespace std::chrono_literals;
namespace rt = midas::testing::redis;
using json = nlohmann::json;

namespace {

bool no_redis() { return !rt::test_url(); }
bool no_private_server() { return no_redis() || !rt::have_redis_server(); }

// Collects log lines; thread-safe.
struct Log {
  std::mutex mutex;
  std::vector<std::string> lines;
  LogSink sink() {
    return [this](LogLevel level, std::string_view m) {
      std::lock_guard lock{mutex};
      lines.push_back(std::string{to_string(level)} + ": " + std::string{m});
    };
  }
  bool has(std::string_view needle) {
    std::lock_guard lock{mutex};
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }
  std::string all() {
    std::lock_guard lock{mutex};
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

// A queue on `url` under a fresh key prefix, whose keys are deleted at the end of the case.
struct Fixture {
  explicit Fixture(std::string url_, RedisOptions options = {}) : url{std::move(url_)} {
    options.key_prefix = prefix;
    options.log = log.sink();
    auto q = connect_redis(url, std::move(options));
    if (!q) FAIL("connect_redis(" << url << "): " << q.error().message());
    queue = std::move(q).value();
  }
  ~Fixture() {
    queue.reset();
    rt::RawRedis raw{url};
    raw.delete_prefix(prefix);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  std::string url;
  std::string prefix = rt::unique_prefix();
  Log log;
  std::unique_ptr<Queue> queue;
};

TaskSpec job(int i, std::string type = "job") {
  TaskSpec s;
  s.type = std::move(type);
  s.params = {{"i", i}};
  return s;
}

// Polls `done` every 10 ms until it holds or `limit` passes.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

std::size_t succeeded(Queue& q, const std::string& queue = "default") {
  auto s = q.stats(queue);
  if (!s || s.value().queues.empty()) return 0;
  return s.value().queues.front().succeeded;
}

WorkerOptions fast_worker(Log& log, int concurrency = 4) {
  WorkerOptions o;
  o.concurrency = concurrency;
  o.lease = 2s;
  o.heartbeat_interval = 500ms;
  o.poll_interval = 200ms;
  o.rescue_interval = 200ms;
  o.shutdown_grace = 5s;
  o.backoff_min = 10ms;
  o.backoff_max = 200ms;
  o.log = log.sink();
  return o;
}

}  // namespace

TEST_SUITE("redis integration") {
  TEST_CASE("connect_redis rejects bad URLs and options without touching the network" *
            doctest::skip(no_redis())) {
    for (const char* url :
         {"redis://127.0.0.1:56379/notadb", "redis://127.0.0.1:56379/0?pool=0",
          "redis://127.0.0.1:56379/0?pool=many", "redis://127.0.0.1:56379/0?bogus=1",
          "redis://127.0.0.1:56379/0?prefix=has%20space", "redis://127.0.0.1:56379/0?prefix=a/b",
          "redis://user@127.0.0.1:56379/0", "postgresql://127.0.0.1/x", "redis:///0"}) {
      CAPTURE(url);
      auto q = connect_redis(url);
      REQUIRE_FALSE(q);
      CHECK(q.error() == errc::invalid_url);
    }
    RedisOptions bad;
    bad.key_prefix = "has space";
    CHECK(connect_redis("redis://127.0.0.1:56379/0", bad).error() == errc::invalid_argument);
  }

  TEST_CASE("a server that is not there is backend_unavailable" * doctest::skip(no_redis())) {
    RedisOptions quiet;
    quiet.log = [](LogLevel, std::string_view) {};
    auto q = connect_redis("redis://127.0.0.1:1/0", quiet);  // port 1: nothing listens
    REQUIRE_FALSE(q);
    CHECK(q.error() == errc::backend_unavailable);
    CHECK(is_transient(q.error()));
    auto via_connect = midas::connect("redis://127.0.0.1:1/0");
    REQUIRE_FALSE(via_connect);
    CHECK(via_connect.error() == errc::backend_unavailable);
  }

  TEST_CASE("every key of a queue carries the queue's hash tag" * doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    TaskSpec keyed = job(1);
    keyed.unique_key = "k";
    TaskSpec later = job(2);
    later.delay = 1h;
    REQUIRE(f.queue->enqueue(keyed));
    REQUIRE(f.queue->enqueue(later));
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 1, .worker_id = "w", .lease = 8s});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 1);
    REQUIRE(f.queue->settle(claimed.value()[0].lease, Settlement{}));
    rt::RawRedis raw{f.url};
    const auto keys = raw.keys("{" + f.prefix + ":*");
    CHECK(keys.size() >= 7);
    for (const auto& k : keys) {
      CAPTURE(k);
      CHECK(k.rfind("{" + f.prefix + ":default}:", 0) == 0);
    }
    CHECK(raw.keys(f.prefix + ":*") == std::vector<std::string>{f.prefix + ":queues"});
    // Ids name their queue, so get() finds a task without any global index.
    CHECK(claimed.value()[0].task.id.rfind("default/", 0) == 0);
  }

  TEST_CASE("tasks leased under the first hash layout are renewed, settled and rescued" *
            doctest::skip(no_redis())) {
    // Until 2026-11 a lease was three hash fields (token, lease_owner, lease_expires_at); now it is
    // one field, lease. Tasks a worker of the first layout leased must go on: this rewrites leased
    // tasks the way that worker stored them.
    Fixture f{*rt::test_url()};
    std::vector<TaskId> ids;
    for (int i = 0; i < 3; ++i) ids.push_back(f.queue->enqueue(job(i)).value().id);
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 3, .worker_id = "new", .lease = 8s});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 3);
    rt::RawRedis raw{f.url};
    const std::string base = "{" + f.prefix + ":default}";
    const auto now_us = [] {
      return std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    const std::int64_t live = now_us() + 8'000'000;
    const std::int64_t gone = now_us() - 1'000'000;
    std::vector<Lease> old;
    for (std::size_t i = 0; i < 3; ++i) {
      const std::string seq = ids[i].substr(ids[i].find('/') + 1);
      const std::string token = "0123456789abcdef0123456789abcde" + std::to_string(i);
      const std::int64_t deadline = i == 2 ? gone : live;
      (void)raw.command({"HDEL", base + ":task:" + seq, "lease"});
      (void)raw.command({"HSET", base + ":task:" + seq, "token", token, "lease_owner", "old worker",
                         "lease_expires_at", std::to_string(deadline), "history", "[]"});
      (void)raw.command({"ZADD", base + ":running", std::to_string(deadline), seq});
      old.push_back(Lease{ids[i], token, "old worker", {}});
    }
    auto shown = f.queue->get(ids[0]);
    REQUIRE(shown);
    CHECK(shown.value().lease_owner == std::optional<std::string>{"old worker"});

    // Renewed and settled with the old tokens; a wrong token is still fenced out.
    auto lost = f.queue->heartbeat(std::vector<Lease>{old[0], old[1]}, 20s);
    REQUIRE(lost);
    CHECK(lost.value().empty());
    shown = f.queue->get(ids[1]);
    REQUIRE(shown);
    REQUIRE(shown.value().lease_expires_at.has_value());
    CHECK(*shown.value().lease_expires_at > TimePoint{std::chrono::microseconds{live}});
    CHECK(f.queue->checkpoint(old[1], json{{"step", 1}}));
    Lease forged = old[0];
    forged.token = "ffffffffffffffffffffffffffffffff";
    CHECK(f.queue->settle(forged, Settlement{}).error() == errc::lease_lost);
    REQUIRE(f.queue->settle(old[0], Settlement{}));
    shown = f.queue->get(ids[0]);
    REQUIRE(shown);
    CHECK(shown.value().status == TaskStatus::succeeded);
    CHECK(shown.value().history.size() == 1);

    // The expired one is found with its old lease and rescued.
    auto expired = f.queue->expired(std::vector<std::string>{"default"}, 10);
    REQUIRE(expired);
    REQUIRE(expired.value().size() == 1);
    CHECK(expired.value()[0].lease.token == old[2].token);
    CHECK(expired.value()[0].lease.worker_id == "old worker");
    Settlement retry;
    retry.status = TaskStatus::retrying;
    retry.run_at = TimePoint{std::chrono::microseconds{gone}};
    REQUIRE(f.queue->rescue(expired.value()[0].lease, retry));

    // Claimed again under the new layout: the old lease fields are gone, so the old token can
    // never fence in again (it would otherwise still match a field left behind).
    auto again =
        f.queue->claim({.queues = {"default"}, .limit = 3, .worker_id = "new", .lease = 8s});
    REQUIRE(again);
    REQUIRE(again.value().size() == 1);
    CHECK(again.value()[0].task.id == ids[2]);
    CHECK(again.value()[0].task.attempt == 2);
    const std::string seq2 = ids[2].substr(ids[2].find('/') + 1);
    auto has_token = raw.command({"HEXISTS", base + ":task:" + seq2, "token"});
    REQUIRE(has_token);
    CHECK(has_token->integer == 0);
    CHECK(f.queue->settle(old[2], Settlement{}).error() == errc::lease_lost);
    REQUIRE(f.queue->settle(again.value()[0].lease, Settlement{}));
    shown = f.queue->get(ids[2]);
    REQUIRE(shown);
    CHECK(shown.value().status == TaskStatus::succeeded);
    CHECK(shown.value().history.size() == 2);
    // A live lease of the first layout is not rescued.
    CHECK(f.queue->rescue(old[1], retry).error() == errc::lease_lost);
    REQUIRE(f.queue->settle(old[1], Settlement{}));

    // A worker of the first layout takes over a task whose hash still holds a newer worker's
    // lease field: its token fields are the lease now, and the leftover token is refused.
    const TaskId taken = f.queue->enqueue(job(9)).value().id;
    auto newer =
        f.queue->claim({.queues = {"default"}, .limit = 1, .worker_id = "new", .lease = 8s});
    REQUIRE(newer);
    REQUIRE(newer.value().size() == 1);
    REQUIRE(newer.value()[0].task.id == taken);
    const std::string seq9 = taken.substr(taken.find('/') + 1);
    (void)raw.command({"HSET", base + ":task:" + seq9, "token", old[0].token, "lease_owner",
                       "old worker", "lease_expires_at", std::to_string(live)});
    CHECK(f.queue->settle(newer.value()[0].lease, Settlement{}).error() == errc::lease_lost);
    lost = f.queue->heartbeat(std::vector<Lease>{newer.value()[0].lease}, 20s);
    REQUIRE(lost);
    CHECK(lost.value() == std::vector<TaskId>{taken});
    Lease takeover = old[0];
    takeover.id = taken;
    REQUIRE(f.queue->settle(takeover, Settlement{}));
  }

  TEST_CASE("a new task's hash holds only what cannot be derived, and reads back whole" *
            doctest::skip(no_redis())) {
    // The packed layout (docs/backends.md): what never changes is one field, d; no seq, queue,
    // updated_at or history at enqueue; a settle that finishes a task writes finished_at and not
    // updated_at.
    Fixture f{*rt::test_url()};
    auto first = f.queue->enqueue(job(1));
    REQUIRE(first);
    const std::string id = first.value().id;
    const std::string key = "{" + f.prefix + ":default}:task:" + id.substr(id.find('/') + 1);
    rt::RawRedis raw{f.url};
    const auto field_names = [&] {
      std::set<std::string> names;
      auto r = raw.command({"HKEYS", key});
      REQUIRE(r);
      for (std::size_t i = 0; i < r->elements; ++i) names.emplace(r->element[i]->str);
      return names;
    };
    CHECK(field_names() == std::set<std::string>{"d", "status", "attempt", "run_at"});
    auto waiting = f.queue->get(id);
    REQUIRE(waiting);
    CHECK(waiting.value().id == id);
    CHECK(waiting.value().queue == "default");
    CHECK(waiting.value().type == "job");
    CHECK(waiting.value().params == json{{"i", 1}});
    CHECK(waiting.value().max_attempts == default_max_attempts);
    CHECK(waiting.value().updated_at == waiting.value().created_at);
    CHECK(waiting.value().history.empty());
    // Its ready member carries d, so the claim does not read the hash.
    auto d = raw.command({"HGET", key, "d"});
    auto ready = raw.command({"ZRANGE", "{" + f.prefix + ":default}:ready", "0", "-1"});
    REQUIRE(d);
    REQUIRE(ready);
    REQUIRE(ready->elements == 1);
    const std::string member{ready->element[0]->str, ready->element[0]->len};
    CHECK(member.size() == 39 + d->len);
    CHECK(member.substr(39) == std::string{d->str, d->len});

    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 1, .worker_id = "w", .lease = 8s});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 1);
    CHECK(claimed.value()[0].task.id == id);
    CHECK(claimed.value()[0].task.queue == "default");
    auto running = f.queue->get(id);
    REQUIRE(running);
    CHECK(running.value().status == TaskStatus::running);
    CHECK(running.value().updated_at == claimed.value()[0].task.updated_at);
    // What the claim gave from the member is what the hash holds.
    CHECK(json(claimed.value()[0].task) == json(running.value()));
    auto expired = f.queue->expired(std::vector<std::string>{"default"}, 10);
    REQUIRE(expired);
    CHECK(expired.value().empty());  // its lease holds

    Settlement success;
    success.record.attempt = 1;
    success.record.decision = "succeeded";
    REQUIRE(f.queue->settle(claimed.value()[0].lease, success));
    auto done = f.queue->get(id);
    REQUIRE(done);
    CHECK(done.value().status == TaskStatus::succeeded);
    REQUIRE(done.value().finished_at.has_value());
    CHECK(done.value().updated_at == *done.value().finished_at);
    CHECK(done.value().updated_at > running.value().updated_at);
    REQUIRE(done.value().history.size() == 1);
    CHECK(done.value().history[0].decision == "succeeded");
    CHECK(done.value().history[0].attempt == 1);
    CHECK_FALSE(field_names().contains("seq"));

    // A hash of an earlier layout carries seq, queue, updated_at and history: read as before.
    const std::string seq = id.substr(id.find('/') + 1);
    (void)raw.command(
        {"HSET", key, "seq", seq, "queue", "default", "updated_at", "4102444800000000"});
    auto older = f.queue->get(id);
    REQUIRE(older);
    CHECK(older.value().id == id);
    CHECK(older.value().updated_at == TimePoint{std::chrono::microseconds{4102444800000000}});
    auto listed = f.queue->list({.queue = "default"});
    REQUIRE(listed);
    REQUIRE(listed.value().size() == 1);
    CHECK(listed.value()[0].id == id);
    // Fields that disagree with the key (no midas writes such a hash): the key wins.
    (void)raw.command({"HSET", key, "seq", "12345", "queue", "elsewhere"});
    auto odd = f.queue->get(id);
    REQUIRE(odd);
    CHECK(odd.value().id == id);

    // A pending task of the compact layout (eight fields, a plain ready member) and one of the
    // layout before it (with seq, queue, updated_at and history) are claimed, and their leases
    // expire and are found, under their own ids (the claim and expired scripts append seq to a
    // hash that may already hold it).
    const std::string base = "{" + f.prefix + ":default}";
    const std::string created = "1795000000000000";
    std::vector<std::string> older_ids;
    for (const std::string older_seq : {"900001", "900002"}) {
      const std::string older_key = base + ":task:" + older_seq;
      (void)raw.command({"HSET", older_key, "type", "older", "params", R"({"layout":8})", "status",
                         "pending", "attempt", "0", "max_attempts", "5", "priority", "3", "run_at",
                         created, "created_at", created});
      if (older_seq == "900002") {
        (void)raw.command({"HSET", older_key, "seq", older_seq, "queue", "default", "updated_at",
                           created, "history", "[]"});
      }
      (void)raw.command({"ZADD", base + ":all", older_seq, older_seq});
      (void)raw.command({"HINCRBY", base + ":counts", "pending", "1"});
      (void)raw.command(
          {"ZADD", base + ":ready", "3",
           "0" + created + ":" + std::string(20 - older_seq.size(), '0') + older_seq});
      older_ids.push_back("default/" + older_seq);
    }
    auto again =
        f.queue->claim({.queues = {"default"}, .limit = 2, .worker_id = "w", .lease = 1ms});
    REQUIRE(again);
    REQUIRE(again.value().size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      const Task& t = again.value()[i].task;
      CHECK(t.id == older_ids[i]);
      CHECK(t.type == "older");
      CHECK(t.params == json{{"layout", 8}});
      CHECK(t.priority == 3);
      CHECK(t.max_attempts == 5);
      CHECK(t.attempt == 1);
      CHECK(t.created_at == TimePoint{std::chrono::microseconds{1795000000000000}});
    }
    std::this_thread::sleep_for(5ms);
    auto overdue = f.queue->expired(std::vector<std::string>{"default"}, 10);
    REQUIRE(overdue);
    REQUIRE(overdue.value().size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(overdue.value()[i].task.id == older_ids[i]);
      CHECK(overdue.value()[i].lease.token == again.value()[i].lease.token);
    }
    auto typed = f.queue->list({.queue = "default", .type = "older"});
    REQUIRE(typed);
    CHECK(typed.value().size() == 2);
    auto jobs = f.queue->list({.queue = "default", .type = "job"});
    REQUIRE(jobs);
    REQUIRE(jobs.value().size() == 1);
    CHECK(jobs.value()[0].id == id);
  }

  TEST_CASE("a ready member that carries its task's data is leased only while the task waits" *
            doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    rt::RawRedis raw{f.url};
    const std::string base = "{" + f.prefix + ":default}";
    const auto ready_count = [&] {
      auto r = raw.command({"ZCARD", base + ":ready"});
      REQUIRE(r);
      return r->integer;
    };
    const auto member_length = [&] {
      auto r = raw.command({"ZRANGE", base + ":ready", "0", "0"});
      REQUIRE(r);
      REQUIRE(r->elements == 1);
      return r->element[0]->len;
    };
    const ClaimRequest all{.queues = {"default"}, .limit = 10, .worker_id = "w", .lease = 8s};

    // A cancel removes the member, whichever form it has.
    auto cancelled = f.queue->enqueue(job(1));
    REQUIRE(cancelled);
    CHECK(member_length() > 39);
    REQUIRE(f.queue->cancel(cancelled.value().id));
    CHECK(ready_count() == 0);

    // A member whose task no longer waits (an older release's cancel leaves it behind) is
    // dropped, not leased, and the task claimed with it gets its own token.
    auto stale = f.queue->enqueue(job(2));
    auto next = f.queue->enqueue(job(7));
    REQUIRE(stale);
    REQUIRE(next);
    const std::string stale_key = base + ":task:" + stale.value().id.substr(8);
    (void)raw.command({"HSET", stale_key, "status", "cancelled", "updated_at", "1795000000000000"});
    (void)raw.command({"HINCRBY", base + ":counts", "pending", "-1"});
    (void)raw.command({"HINCRBY", base + ":counts", "cancelled", "1"});
    auto one = f.queue->claim(all);
    REQUIRE(one);
    REQUIRE(one.value().size() == 1);
    CHECK(one.value()[0].task.id == next.value().id);
    CHECK(ready_count() == 0);
    auto lost = f.queue->heartbeat(std::vector<Lease>{one.value()[0].lease}, 8s);
    REQUIRE(lost);
    CHECK(lost.value().empty());
    REQUIRE(f.queue->settle(one.value()[0].lease, Settlement{}));
    auto kept = f.queue->get(stale.value().id);
    REQUIRE(kept);
    CHECK(kept.value().status == TaskStatus::cancelled);

    // Requeued by this release, such a task has both members: whichever the claim takes first,
    // the task is leased once, from its hash (the run_at of the requeue, not of the enqueue).
    auto twice = f.queue->enqueue(job(8));
    REQUIRE(twice);
    auto as_enqueued = f.queue->get(twice.value().id);
    REQUIRE(as_enqueued);
    const std::string twice_key = base + ":task:" + twice.value().id.substr(8);
    (void)raw.command({"HSET", twice_key, "status", "cancelled", "updated_at", "1795000000000000"});
    (void)raw.command({"HINCRBY", base + ":counts", "pending", "-1"});
    (void)raw.command({"HINCRBY", base + ":counts", "cancelled", "1"});
    REQUIRE(f.queue->requeue(twice.value().id));
    CHECK(ready_count() == 2);
    auto requeued = f.queue->claim(all);
    REQUIRE(requeued);
    REQUIRE(requeued.value().size() == 1);
    CHECK(requeued.value()[0].task.id == twice.value().id);
    CHECK(requeued.value()[0].task.run_at > as_enqueued.value().run_at);
    auto requeued_now = f.queue->get(twice.value().id);
    REQUIRE(requeued_now);
    CHECK(json(requeued.value()[0].task) == json(requeued_now.value()));
    CHECK(ready_count() == 0);
    REQUIRE(f.queue->settle(requeued.value()[0].lease, Settlement{}));
    auto none = f.queue->claim(all);
    REQUIRE(none);
    CHECK(none.value().empty());

    // A hash deleted by hand: the member is dropped and no hash is made.
    auto deleted = f.queue->enqueue(job(3));
    REQUIRE(deleted);
    const std::string deleted_key = base + ":task:" + deleted.value().id.substr(8);
    (void)raw.command({"DEL", deleted_key});
    none = f.queue->claim(all);
    REQUIRE(none);
    CHECK(none.value().empty());
    auto exists = raw.command({"EXISTS", deleted_key});
    REQUIRE(exists);
    CHECK(exists->integer == 0);

    // A unique key, a delay, a retry: plain members, and the claim reads the hash.
    TaskSpec unique = job(4);
    unique.unique_key = "only-one";
    unique.priority = -2;
    unique.max_attempts = 4;
    auto u = f.queue->enqueue(unique);
    REQUIRE(u);
    CHECK(member_length() == 38);
    auto claimed = f.queue->claim(all);
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 1);
    CHECK(claimed.value()[0].task.unique_key == "only-one");
    CHECK(claimed.value()[0].task.priority == -2);
    CHECK(claimed.value()[0].task.max_attempts == 4);
    Settlement retry;
    retry.status = TaskStatus::retrying;
    retry.run_at = f.queue->clock().now();
    retry.record.attempt = 1;
    retry.record.decision = "retry";
    REQUIRE(f.queue->settle(claimed.value()[0].lease, retry));
    CHECK(member_length() == 38);
    auto score = raw.command({"ZRANGE", base + ":ready", "0", "0", "WITHSCORES"});
    REQUIRE(score);
    REQUIRE(score->elements == 2);
    CHECK(std::string{score->element[1]->str, score->element[1]->len} == "-2");  // its priority
    auto retried = f.queue->claim(all);
    REQUIRE(retried);
    REQUIRE(retried.value().size() == 1);
    CHECK(retried.value()[0].task.id == u.value().id);
    CHECK(retried.value()[0].task.attempt == 2);
    CHECK(retried.value()[0].task.priority == -2);
    CHECK(retried.value()[0].task.history.size() == 1);
    REQUIRE(f.queue->settle(retried.value()[0].lease, Settlement{}));

    // A retry of a task without a unique key carries d in its member too; its claim reads the
    // five fields that can have changed (status, attempt, run_at, history, checkpoint).
    TaskSpec again_spec = job(9);
    again_spec.priority = 3;
    auto again_id = f.queue->enqueue(again_spec);
    REQUIRE(again_id);
    auto attempt1 = f.queue->claim(all);
    REQUIRE(attempt1);
    REQUIRE(attempt1.value().size() == 1);
    REQUIRE(f.queue->checkpoint(attempt1.value()[0].lease, json{{"page", 2}}));
    Settlement retry_now = retry;
    retry_now.run_at = f.queue->clock().now();
    REQUIRE(f.queue->settle(attempt1.value()[0].lease, retry_now));
    CHECK(member_length() > 39);
    auto attempt2 = f.queue->claim(all);
    REQUIRE(attempt2);
    REQUIRE(attempt2.value().size() == 1);
    const Task& second_try = attempt2.value()[0].task;
    CHECK(second_try.id == again_id.value().id);
    CHECK(second_try.attempt == 2);
    CHECK(second_try.priority == 3);
    CHECK(second_try.checkpoint == json{{"page", 2}});
    REQUIRE(second_try.history.size() == 1);
    CHECK(second_try.history[0].decision == "retry");
    auto stored_try = f.queue->get(again_id.value().id);
    REQUIRE(stored_try);
    CHECK(json(second_try) == json(stored_try.value()));
    CHECK(second_try.run_at == stored_try.value().run_at);
    REQUIRE(f.queue->settle(attempt2.value()[0].lease, Settlement{}));

    // Delayed tasks become due in priority order: the priority is read from d.
    TaskSpec later = job(5);
    later.delay = 30ms;
    later.priority = 5;
    TaskSpec urgent = job(6);
    urgent.delay = 30ms;
    urgent.priority = 1;
    auto l = f.queue->enqueue(later);
    auto g = f.queue->enqueue(urgent);
    REQUIRE(l);
    REQUIRE(g);
    CHECK(ready_count() == 0);  // scheduled
    std::this_thread::sleep_for(40ms);
    ClaimRequest first = all;
    first.limit = 1;
    auto due = f.queue->claim(first);
    REQUIRE(due);
    REQUIRE(due.value().size() == 1);
    CHECK(due.value()[0].task.id == g.value().id);
    CHECK(due.value()[0].task.params == json{{"i", 6}});
    CHECK(due.value()[0].task.priority == 1);
    CHECK(due.value()[0].task.attempt == 1);
    auto rest = f.queue->claim(all);
    REQUIRE(rest);
    REQUIRE(rest.value().size() == 1);
    CHECK(rest.value()[0].task.id == l.value().id);
    CHECK(rest.value()[0].task.priority == 5);
  }

  TEST_CASE("a claim that skips a stale ready entry gives each leased task its own token" *
            doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    const ClaimRequest one{.queues = {"default"}, .limit = 1, .worker_id = "w", .lease = 8s};
    auto first = f.queue->enqueue(job(1));
    REQUIRE(first);
    auto done = f.queue->claim(one);
    REQUIRE(done);
    REQUIRE(done.value().size() == 1);
    REQUIRE(f.queue->settle(done.value()[0].lease, Settlement{}));
    auto a = f.queue->enqueue(job(2));
    auto b = f.queue->enqueue(job(3));
    REQUIRE(a);
    REQUIRE(b);
    // A ready entry for the finished task, ahead of everything: the claim pops it, finds the
    // task is not waiting, and skips it without using a token.
    const std::string seq = first.value().id.substr(first.value().id.find('/') + 1);
    std::string member(17, '0');
    member += ':' + std::string(20 - seq.size(), '0') + seq;
    rt::RawRedis raw{f.url};
    (void)raw.command({"ZADD", "{" + f.prefix + ":default}:ready", "-100", member});
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 3, .worker_id = "w", .lease = 8s});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 2);
    CHECK(claimed.value()[0].task.id == a.value().id);
    CHECK(claimed.value()[1].task.id == b.value().id);
    std::vector<Lease> leases;
    for (const auto& c : claimed.value()) {
      CHECK(c.task.status == TaskStatus::running);
      CHECK(c.task.attempt == 1);
      leases.push_back(c.lease);
    }
    auto lost = f.queue->heartbeat(leases, 8s);
    REQUIRE(lost);
    CHECK(lost.value().empty());  // each token is the one stored with its task
    for (const auto& l : leases) CHECK(f.queue->settle(l, Settlement{}));
    auto stored = f.queue->get(a.value().id);
    REQUIRE(stored);
    CHECK(stored.value().status == TaskStatus::succeeded);
    CHECK_FALSE(stored.value().lease_owner.has_value());  // its lease fields are left behind
  }

  TEST_CASE("a claim returns unique keys and earlier owners holding byte 31 intact" *
            doctest::skip(no_redis())) {
    // The claim script joins each task's fields with byte 31 into one string, except a task
    // whose unique key or last lease holds that byte: it goes back as an array. A first claim
    // reads the unique keys; the third task's lease by an owner holding the byte expires, and a
    // second claim reads that lease back from the hash.
    Fixture f{*rt::test_url()};
    const std::string odd_owner = std::string{"w"} + '\x1f' + "1";
    const std::string odd_key = std::string{"k"} + '\x1f' + "1";
    auto plain = job(1);
    plain.unique_key = "plain-key";
    auto with_key = job(2);
    with_key.unique_key = odd_key;
    REQUIRE(f.queue->enqueue(plain));
    REQUIRE(f.queue->enqueue(with_key));
    REQUIRE(f.queue->enqueue(job(3)));
    auto first =
        f.queue->claim({.queues = {"default"}, .limit = 3, .worker_id = odd_owner, .lease = 8s});
    REQUIRE(first);
    REQUIRE(first.value().size() == 3);
    CHECK(first.value()[0].task.unique_key == std::optional<std::string>{"plain-key"});
    CHECK(first.value()[1].task.unique_key == std::optional<std::string>{odd_key});
    CHECK(first.value()[2].task.lease_owner == std::optional<std::string>{odd_owner});
    Settlement retry;
    retry.status = TaskStatus::retrying;
    retry.record.attempt = 1;
    retry.record.worker_id = odd_owner;
    retry.record.decision = "retry";
    REQUIRE(f.queue->settle(first.value()[2].lease, retry));
    auto again =
        f.queue->claim({.queues = {"default"}, .limit = 1, .worker_id = "w2", .lease = 8s});
    REQUIRE(again);
    REQUIRE(again.value().size() == 1);
    const auto& t = again.value()[0].task;
    CHECK(t.id == first.value()[2].task.id);
    CHECK(t.attempt == 2);
    CHECK(t.lease_owner == std::optional<std::string>{"w2"});
    REQUIRE(t.history.size() == 1);
    CHECK(t.history[0].worker_id == odd_owner);
    auto stored = f.queue->get(first.value()[1].task.id);
    REQUIRE(stored);
    CHECK(stored.value().unique_key == std::optional<std::string>{odd_key});
  }

  TEST_CASE("an idle worker starts a newly enqueued task within a few milliseconds" *
            doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    using SteadyClock = std::chrono::steady_clock;
    std::mutex mutex;
    std::map<int, SteadyClock::time_point> started;
    Registry reg;
    reg.add_json("ping", [&](const json& p, TaskContext&) -> result<void> {
      std::lock_guard lock{mutex};
      started[p.at("i").get<int>()] = SteadyClock::now();
      return success();
    });
    WorkerOptions o = fast_worker(f.log, 2);
    o.poll_interval = 10s;  // a wake-up must come from the enqueue, not from polling
    Worker worker{*f.queue, reg, o};
    worker.start();
    std::vector<double> latencies_ms;
    for (int i = 0; i < 7; ++i) {
      std::this_thread::sleep_for(150ms);  // idle: blocked waiting for work
      const auto t0 = SteadyClock::now();
      REQUIRE(f.queue->enqueue(job(i, "ping")));
      REQUIRE(eventually(
          [&] {
            std::lock_guard lock{mutex};
            return started.contains(i);
          },
          5s));
      std::lock_guard lock{mutex};
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(started[i] - t0).count());
    }
    worker.stop();
    std::sort(latencies_ms.begin(), latencies_ms.end());
    const double median = latencies_ms[latencies_ms.size() / 2];
    MESSAGE("enqueue-to-start latency, median " << median << " ms, max " << latencies_ms.back()
                                                << " ms");
    CHECK(median < 50.0);  // a few ms on an idle machine; generous for a loaded CI
    CHECK(latencies_ms.back() < 1000.0);
  }

  TEST_CASE("SCRIPT FLUSH in the middle of a drain: work continues" *
            doctest::skip(no_private_server())) {
    rt::PrivateServer server{26384, {"--appendonly", "yes"}};
    REQUIRE(server.start());
    Fixture f{server.url()};
    constexpr int total = 300;
    std::vector<TaskSpec> specs;
    for (int i = 0; i < total; ++i) specs.push_back(job(i));
    REQUIRE(f.queue->enqueue_batch(specs));

    std::atomic<int> runs{0};
    std::atomic<bool> flushed{false};
    std::mutex mutex;
    std::multiset<std::string> ran;
    Registry reg;
    reg.add_json("job", [&](const json&, TaskContext& ctx) -> result<void> {
      {
        std::lock_guard lock{mutex};
        ran.insert(ctx.task().id);
      }
      if (++runs == total / 3 && !flushed.exchange(true)) {
        rt::RawRedis raw{f.url};
        auto r = raw.command({"SCRIPT", "FLUSH"});
        REQUIRE(r);
        CHECK(r->type == REDIS_REPLY_STATUS);
      }
      return success();
    });
    Worker worker{*f.queue, reg, fast_worker(f.log)};
    worker.start();
    CHECK(eventually([&] { return succeeded(*f.queue) == total; }, 30s));
    worker.stop();

    CHECK(flushed.load());
    CHECK(succeeded(*f.queue) == total);
    CHECK(ran.size() == total);
    CHECK(std::set<std::string>(ran.begin(), ran.end()).size() == total);  // none ran twice
    CHECK(worker.stats().backend_errors == 0);  // NOSCRIPT was handled inside the backend
    CHECK_MESSAGE(f.log.has("loaded them again"), f.log.all());
  }

  TEST_CASE("a Redis restart in the middle of a drain loses no acknowledged task" *
            doctest::skip(no_private_server())) {
    rt::PrivateServer server{26380, {"--appendonly", "yes", "--appendfsync", "always"}};
    REQUIRE(server.start());
    Fixture f{server.url()};
    constexpr int before = 200;
    constexpr int during = 60;
    std::mutex mutex;
    std::set<TaskId> acknowledged;
    std::map<TaskId, int> runs;
    std::vector<TaskSpec> specs;
    for (int i = 0; i < before; ++i) specs.push_back(job(i));
    {
      auto ids = f.queue->enqueue_batch(specs);
      REQUIRE(ids);
      for (const auto& e : ids.value()) acknowledged.insert(e.id);
    }

    std::atomic<int> done{0};
    Registry reg;
    reg.add_json("job",
                 [&](const json&, TaskContext& ctx) -> result<void> {
                   std::this_thread::sleep_for(2ms);
                   std::lock_guard lock{mutex};
                   ++runs[ctx.task().id];
                   ++done;
                   return success();
                 },
                 {.retry = RetryPolicy::fixed(50ms).max_attempts(50).jitter(Jitter::none)});
    Worker worker{*f.queue, reg, fast_worker(f.log)};
    worker.start();
    REQUIRE(eventually([&] { return done.load() >= 50; }, 20s));

    server.kill();  // SIGKILL mid-drain: no shutdown, no last flush
    // While it is down, calls fail with a transient error instead of hanging or crashing.
    auto refused = f.queue->enqueue(job(-1));
    REQUIRE_FALSE(refused);
    CHECK(is_transient(refused.error()));
    // A producer keeps enqueueing through the outage, retrying until each enqueue is acknowledged.
    std::atomic<int> producer_errors{0};
    std::thread producer{[&] {
      for (int i = 0; i < during; ++i) {
        for (;;) {
          auto e = f.queue->enqueue(job(before + i));
          if (e) {
            std::lock_guard lock{mutex};
            acknowledged.insert(e.value().id);
            break;
          }
          ++producer_errors;
          std::this_thread::sleep_for(20ms);
        }
        std::this_thread::sleep_for(5ms);
      }
    }};
    std::this_thread::sleep_for(700ms);
    REQUIRE(server.start());  // same dir: the AOF is replayed
    producer.join();
    CHECK(producer_errors.load() > 0);

    // Every acknowledged task ends up succeeded; tasks that were running at the crash may run twice
    // (at-least-once), but none is lost.
    auto all_done = [&] {
      std::lock_guard lock{mutex};
      for (const auto& id : acknowledged) {
        auto t = f.queue->get(id);
        if (!t || t.value().status != TaskStatus::succeeded) return false;
      }
      return true;
    };
    CHECK(eventually(all_done, 60s));
    worker.stop();
    std::lock_guard lock{mutex};
    CHECK(acknowledged.size() == before + during);
    std::size_t missing = 0;
    for (const auto& id : acknowledged) {
      auto t = f.queue->get(id);
      if (!t || t.value().status != TaskStatus::succeeded) ++missing;
    }
    CHECK(missing == 0);
    for (const auto& id : acknowledged) {
      if (!runs.contains(id)) FAIL_CHECK("task " << id << " never ran");
    }
    std::size_t twice = 0;
    for (const auto& [id, n] : runs) twice += n > 1 ? 1 : 0;
    MESSAGE("outage: " << producer_errors.load() << " refused enqueues, "
                       << worker.stats().backend_errors << " worker backend errors, " << twice
                       << " task(s) ran again after the crash");
    CHECK(f.log.has("cannot connect"));  // the outage was seen and logged once
  }

  TEST_CASE("two processes draining one queue never run a task twice while leases hold" *
            doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    constexpr int total = 400;
    std::vector<TaskSpec> specs;
    for (int i = 0; i < total; ++i) specs.push_back(job(i));
    auto enqueued = f.queue->enqueue_batch(specs);
    REQUIRE(enqueued);
    char path_template[] = "/tmp/midas-redis-runs.XXXXXX";
    const int fd = mkstemp(path_template);
    REQUIRE(fd >= 0);
    close(fd);
    const std::string runs_file = path_template;

    std::fflush(nullptr);
    std::vector<pid_t> children;
    for (int n = 0; n < 2; ++n) {
      const pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        // The child: its own connections, its own worker; reports through its exit code only.
        int code = 0;
        {
          RedisOptions options;
          options.key_prefix = f.prefix;
          options.log = [](LogLevel, std::string_view) {};
          auto q = connect_redis(f.url, options);
          if (!q) _exit(3);
          const int out = ::open(runs_file.c_str(), O_WRONLY | O_APPEND);
          if (out < 0) _exit(4);
          Registry reg;
          reg.add_json("job", [&](const json&, TaskContext& ctx) -> result<void> {
            const std::string line = ctx.task().id + " " + std::to_string(n) + "\n";
            if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
              return make_error_code(std::errc::io_error);
            }
            std::this_thread::sleep_for(1ms);
            return success();
          });
          WorkerOptions o;
          o.concurrency = 4;
          o.poll_interval = 50ms;
          o.log = [](LogLevel, std::string_view) {};
          Worker worker{*q.value(), reg, o};
          const WorkerStats s = worker.run_until_idle();
          if (s.lease_lost != 0 || s.backend_errors != 0) code = 5;
          ::close(out);
        }
        _exit(code);
      }
      children.push_back(pid);
    }
    for (pid_t pid : children) {
      int status = 0;
      REQUIRE(waitpid(pid, &status, 0) == pid);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }

    std::map<std::string, int> times;
    std::set<std::string> by_child[2];
    std::ifstream in{runs_file};
    std::string id;
    int child = 0;
    while (in >> id >> child) {
      ++times[id];
      by_child[child % 2].insert(id);
    }
    std::remove(runs_file.c_str());
    CHECK(times.size() == total);
    for (const auto& [task, n] : times) {
      if (n != 1) FAIL_CHECK("task " << task << " ran " << n << " times");
    }
    for (const auto& e : enqueued.value()) CHECK(times.contains(e.id));
    MESSAGE("child 0 ran " << by_child[0].size() << ", child 1 ran " << by_child[1].size());
    CHECK(succeeded(*f.queue) == total);
  }

  TEST_CASE("a lost reply to a settlement is in_doubt and the settlement is not applied twice" *
            doctest::skip(no_private_server())) {
    rt::PrivateServer server{26383, {"--appendonly", "yes"}};
    REQUIRE(server.start());
    RedisOptions options;
    options.command_timeout = 300ms;
    Fixture f{server.url(), options};
    REQUIRE(f.queue->enqueue(job(1)));
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 1, .worker_id = "w", .lease = 1h});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 1);
    const ClaimedTask c = claimed.value().front();

    // The server stops answering writes for a while: the settlement's reply never comes back in
    // time (and, sent again, neither does the second one).
    rt::RawRedis raw{f.url};
    auto paused = raw.command({"CLIENT", "PAUSE", "1500", "WRITE"});
    REQUIRE(paused);
    REQUIRE(paused->type == REDIS_REPLY_STATUS);
    Settlement done;
    done.record.attempt = 1;
    done.record.decision = "succeeded";
    auto r = f.queue->settle(c.lease, done);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::in_doubt);
    CHECK_FALSE(is_transient(r.error()));
    std::this_thread::sleep_for(1500ms);

    // The commands whose replies were lost died with their connections: nothing was recorded.
    auto t = f.queue->get(c.task.id);
    REQUIRE(t);
    CHECK(t.value().status == TaskStatus::running);
    CHECK(t.value().history.empty());
    // The lease holder settles for real; a repeat is refused by the fence, not applied twice.
    REQUIRE(f.queue->settle(c.lease, done));
    CHECK(f.queue->settle(c.lease, done).error() == errc::lease_lost);
    t = f.queue->get(c.task.id);
    REQUIRE(t);
    CHECK(t.value().status == TaskStatus::succeeded);
    CHECK(t.value().history.size() == 1);
  }

  TEST_CASE("settle_batch records many outcomes in one call and fences each one" *
            doctest::skip(no_redis())) {
    Fixture f{*rt::test_url()};
    std::vector<TaskSpec> specs{job(1), job(2), job(3)};
    REQUIRE(f.queue->enqueue_batch(specs));
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 3, .worker_id = "w", .lease = 1h});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 3);
    const auto& c = claimed.value();
    Settlement done;
    done.record.attempt = 1;
    done.record.decision = "succeeded";
    Settlement retry;
    retry.status = TaskStatus::retrying;
    retry.run_at = f.queue->clock().now() + 1h;
    retry.record.attempt = 1;
    retry.record.decision = "retry";
    Settlement not_an_outcome;
    not_an_outcome.status = TaskStatus::running;
    Lease forged = c[2].lease;
    forged.token = "forged";
    Lease unknown = c[2].lease;
    unknown.id = "no-such-task";
    const std::vector<std::pair<Lease, Settlement>> items{{c[0].lease, done},
                                                          {c[1].lease, retry},
                                                          {forged, done},
                                                          {unknown, done},
                                                          {c[2].lease, not_an_outcome}};
    auto codes = f.queue->settle_batch(items);
    REQUIRE(codes);
    REQUIRE(codes.value().size() == items.size());
    CHECK_FALSE(codes.value()[0]);
    CHECK_FALSE(codes.value()[1]);
    CHECK(codes.value()[2] == errc::lease_lost);
    CHECK(codes.value()[3] == errc::lease_lost);
    CHECK(codes.value()[4] == errc::invalid_argument);
    CHECK(f.queue->get(c[0].task.id).value().status == TaskStatus::succeeded);
    CHECK(f.queue->get(c[1].task.id).value().status == TaskStatus::retrying);
    CHECK(f.queue->get(c[2].task.id).value().status == TaskStatus::running);
    // Settled leases are used up: the same batch again is fenced out item by item.
    codes = f.queue->settle_batch(std::span{items}.first(2));
    REQUIRE(codes);
    CHECK(codes.value()[0] == errc::lease_lost);
    CHECK(codes.value()[1] == errc::lease_lost);
    CHECK(f.queue->get(c[0].task.id).value().history.size() == 1);
  }

  TEST_CASE(
      "a lost reply to a batch of settlements is in_doubt for each and applies nothing twice" *
      doctest::skip(no_private_server())) {
    rt::PrivateServer server{26385, {"--appendonly", "yes"}};
    REQUIRE(server.start());
    RedisOptions options;
    options.command_timeout = 300ms;
    Fixture f{server.url(), options};
    std::vector<TaskSpec> specs{job(1), job(2)};
    REQUIRE(f.queue->enqueue_batch(specs));
    auto claimed =
        f.queue->claim({.queues = {"default"}, .limit = 2, .worker_id = "w", .lease = 1h});
    REQUIRE(claimed);
    REQUIRE(claimed.value().size() == 2);
    Settlement done;
    done.record.attempt = 1;
    done.record.decision = "succeeded";
    const std::vector<std::pair<Lease, Settlement>> items{{claimed.value()[0].lease, done},
                                                          {claimed.value()[1].lease, done}};
    rt::RawRedis raw{f.url};
    auto paused = raw.command({"CLIENT", "PAUSE", "1500", "WRITE"});
    REQUIRE(paused);
    auto codes = f.queue->settle_batch(items);
    REQUIRE(codes);
    CHECK(codes.value() == std::vector<std::error_code>(2, make_error_code(errc::in_doubt)));
    std::this_thread::sleep_for(1500ms);
    codes = f.queue->settle_batch(items);
    REQUIRE(codes);
    CHECK(codes.value() == std::vector<std::error_code>(2, std::error_code{}));
    for (const auto& c : claimed.value()) {
      auto t = f.queue->get(c.task.id);
      REQUIRE(t);
      CHECK(t.value().status == TaskStatus::succeeded);
      CHECK(t.value().history.size() == 1);
    }
  }

  TEST_CASE("durability findings are logged and shown in stats" *
            doctest::skip(no_private_server())) {
    SUBCASE("appendonly no and allkeys-lru are warned about, in the log and in stats") {
      rt::PrivateServer server{26381, {"--appendonly", "no"}};
      REQUIRE(server.start());
      Fixture f{server.url()};
      CHECK_MESSAGE(f.log.has("warning: Redis at 127.0.0.1:26381: appendonly is no"), f.log.all());
      auto s = f.queue->stats(std::nullopt);
      REQUIRE(s);
      REQUIRE(s.value().durability_warnings.size() == 1);
      CHECK(s.value().durability_warnings[0].find("appendonly is no") != std::string::npos);

      rt::RawRedis raw{f.url};
      REQUIRE(raw.command({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}));
      s = f.queue->stats(std::nullopt);
      REQUIRE(s);
      REQUIRE(s.value().durability_warnings.size() == 2);
      CHECK(s.value().durability_warnings[1].find("maxmemory-policy is allkeys-lru") !=
            std::string::npos);
    }
    SUBCASE("CONFIG renamed away (as on managed Redis) is said, not a failure") {
      rt::PrivateServer server{26382, {"--appendonly", "yes", "--rename-command", "CONFIG", ""}};
      REQUIRE(server.start());
      Fixture f{server.url()};
      CHECK_MESSAGE(f.log.has("cannot read its configuration"), f.log.all());
      auto s = f.queue->stats(std::nullopt);
      REQUIRE(s);
      REQUIRE(s.value().durability_warnings.size() == 1);
      CHECK(s.value().durability_warnings[0].find("CONFIG") != std::string::npos);
      CHECK(f.queue->enqueue(job(1)));
    }
    SUBCASE("AOF on with noeviction: nothing to warn about") {
      rt::PrivateServer server{26381, {"--appendonly", "yes", "--appendfsync", "everysec"}};
      REQUIRE(server.start());
      Fixture f{server.url()};
      CHECK_FALSE(f.log.has("warning"));
      auto s = f.queue->stats(std::nullopt);
      REQUIRE(s);
      CHECK(s.value().durability_warnings.empty());
    }
  }

}  // TEST_SUITE
