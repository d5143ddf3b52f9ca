// SPDX-License-Identifier: MIT
// How many tasks a worker claims at once: adaptive by default (WorkerOptions::prefetch = -1),
// fixed when set. The backend is the memory queue behind a decorator that makes every claim take
// a few milliseconds, like a round trip to a server, and records the limit each claim asked for.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <midas/midas.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "printers.hpp"

using namespace std::chrono_literals;
using midas::Queue;
using midas::result;
using json = nlohmann::json;

namespace unit_test {

class SlowClaims final : public Queue {
 public:
  explicit SlowClaims(std::chrono::microseconds delay,
                      std::chrono::microseconds settle_delay = std::chrono::microseconds{0})
      : delay_{delay}, settle_delay_{settle_delay} {}

  [[nodiscard]] std::vector<std::size_t> limits() const {
    std::lock_guard lock{mutex_};
    return limits_;
  }
  struct Claim {
    std::chrono::steady_clock::time_point at;
    std::size_t limit = 0;
    std::size_t unsettled = 0;  // claimed before and not settled yet
  };
  [[nodiscard]] std::vector<Claim> claims() const {
    std::lock_guard lock{mutex_};
    return claims_;
  }
  // The most tasks claimed and not yet settled at any time.
  [[nodiscard]] std::size_t most_unsettled() const {
    std::lock_guard lock{mutex_};
    return most_unsettled_;
  }

  result<midas::Enqueued> enqueue(const midas::TaskSpec& spec) override {
    return inner_->enqueue(spec);
  }
  result<std::vector<midas::Enqueued>> enqueue_batch(
      std::span<const midas::TaskSpec> specs) override {
    return inner_->enqueue_batch(specs);
  }
  result<std::vector<midas::ClaimedTask>> claim(const midas::ClaimRequest& request) override {
    {
      std::lock_guard lock{mutex_};
      limits_.push_back(request.limit);
      claims_.push_back({std::chrono::steady_clock::now(), request.limit, unsettled_});
    }
    std::this_thread::sleep_for(delay_);
    auto claimed = inner_->claim(request);
    if (claimed) {
      std::lock_guard lock{mutex_};
      unsettled_ += claimed.value().size();
      most_unsettled_ = std::max(most_unsettled_, unsettled_);
    }
    return claimed;
  }
  result<std::vector<midas::TaskId>> heartbeat(std::span<const midas::Lease> leases,
                                               midas::Duration lease) override {
    return inner_->heartbeat(leases, lease);
  }
  result<void> settle(const midas::Lease& lease, const midas::Settlement& s) override {
    return inner_->settle(lease, s);
  }
  result<std::vector<std::error_code>> settle_batch(
      std::span<const std::pair<midas::Lease, midas::Settlement>> items) override {
    std::this_thread::sleep_for(settle_delay_);
    auto acked = inner_->settle_batch(items);
    std::lock_guard lock{mutex_};
    unsettled_ -= std::min(unsettled_, items.size());
    return acked;
  }
  result<void> checkpoint(const midas::Lease& lease, const json& progress) override {
    return inner_->checkpoint(lease, progress);
  }
  result<std::vector<midas::ClaimedTask>> expired(std::span<const std::string> queues,
                                                  std::size_t limit) override {
    return inner_->expired(queues, limit);
  }
  result<void> rescue(const midas::Lease& lease, const midas::Settlement& s) override {
    return inner_->rescue(lease, s);
  }
  result<bool> wait_for_tasks(std::span<const std::string> queues,
                              midas::Duration max_wait) override {
    return inner_->wait_for_tasks(queues, max_wait);
  }
  result<midas::Task> get(const midas::TaskId& id) override { return inner_->get(id); }
  result<std::vector<midas::Task>> list(const midas::ListFilter& filter) override {
    return inner_->list(filter);
  }
  result<void> cancel(const midas::TaskId& id) override { return inner_->cancel(id); }
  result<void> requeue(const midas::TaskId& id) override { return inner_->requeue(id); }
  result<std::size_t> prune(midas::TimePoint cutoff, std::size_t limit) override {
    return inner_->prune(cutoff, limit);
  }
  result<midas::Stats> stats(const std::optional<std::string>& queue) override {
    return inner_->stats(queue);
  }
  const midas::Clock& clock() const noexcept override { return inner_->clock(); }

 private:
  std::unique_ptr<Queue> inner_ = midas::make_memory_queue({.log = {}});
  std::chrono::microseconds delay_;
  std::chrono::microseconds settle_delay_;
  mutable std::mutex mutex_;
  std::vector<std::size_t> limits_;
  std::vector<Claim> claims_;
  std::size_t unsettled_ = 0;
  std::size_t most_unsettled_ = 0;
};

// Runs `tasks` tasks of a handler that sleeps `handler_time` on `concurrency` threads; returns the
// limits the worker's claims asked for.
std::vector<std::size_t> claim_limits(int tasks, std::chrono::microseconds handler_time,
                                      int concurrency, int prefetch) {
  SlowClaims queue{3ms};
  midas::Registry registry;
  registry.add_json("job", [&](const json&, midas::TaskContext&) -> result<void> {
    if (handler_time.count() > 0) std::this_thread::sleep_for(handler_time);
    return midas::success();
  });
  std::vector<midas::TaskSpec> specs;
  for (int i = 0; i < tasks; ++i) specs.push_back(registry.spec("job", json{{"i", i}}));
  REQUIRE(queue.enqueue_batch(specs));
  midas::Worker worker{
      queue, registry, {.concurrency = concurrency, .prefetch = prefetch, .log = {}}};
  const midas::WorkerStats stats = worker.run_until_idle();
  CHECK(stats.succeeded == static_cast<std::uint64_t>(tasks));
  return queue.limits();
}

std::size_t largest(const std::vector<std::size_t>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

TEST_SUITE("unit: worker prefetch") {
  TEST_CASE("short handlers: the worker claims far ahead, up to 16 tasks per thread") {
    // A claim takes 3 ms and a handler next to nothing: 2 threads empty a claim of 4 long before
    // the next one arrives, so the window grows to its bound, 2 + 2 x 16.
    const auto limits = claim_limits(600, 0us, 2, -1);
    CHECK(limits.front() == 4);  // nothing measured yet: concurrency + concurrency
    CHECK(largest(limits) > 4);
    CHECK(largest(limits) <= 2 + 32);
  }

  TEST_CASE("long handlers: the worker claims no more than concurrency ahead") {
    // A handler takes 30 ms, ten times a claim: claiming more than concurrency ahead would only
    // hold leases other workers could use.
    const auto limits = claim_limits(16, 30ms, 2, -1);
    REQUIRE(!limits.empty());
    CHECK(largest(limits) <= 4);
  }

  TEST_CASE("once every thread runs a task longer than those measured, claims stop reaching far") {
    // 200 tasks of no time open the window to 1 + 16; then 30 tasks of 20 ms keep the one thread
    // busy. Claims made once such a task runs must not keep 17 tasks on hold for it: the window
    // falls back towards concurrency + concurrency.
    SlowClaims queue{3ms};
    std::mutex mutex;
    std::optional<std::chrono::steady_clock::time_point> first_long;
    midas::Registry registry;
    registry.add_json("job", [&](const json& p, midas::TaskContext&) -> result<void> {
      if (p.at("long").get<bool>()) {
        {
          std::lock_guard lock{mutex};
          if (!first_long) first_long = std::chrono::steady_clock::now();
        }
        std::this_thread::sleep_for(20ms);
      }
      return midas::success();
    });
    std::vector<midas::TaskSpec> specs;
    for (int i = 0; i < 230; ++i) specs.push_back(registry.spec("job", json{{"long", i >= 200}}));
    REQUIRE(queue.enqueue_batch(specs));
    midas::Worker worker{queue, registry, {.concurrency = 1, .log = {}}};
    CHECK(worker.run_until_idle().succeeded == 230);
    REQUIRE(first_long.has_value());
    CHECK(largest(queue.limits()) > 2);  // the short tasks did open the window
    std::size_t later = 0;
    for (const auto& c : queue.claims()) {
      if (c.at < *first_long + 10ms) continue;  // asked before the long task looked long
      ++later;
      CAPTURE(c.limit);
      CAPTURE(c.unsettled);
      // A window of 2 while the thread is busy, 3 right after the first long task (the average
      // handler time catches up), and an ack that may be in flight.
      CHECK(c.unsettled + c.limit <= 5);
    }
    CHECK(later > 0);
  }

  TEST_CASE("claims do not outrun acks that are slower than they are") {
    // Claims are free and every ack takes 5 ms: without a bound the worker would claim and run
    // all 400 tasks long before their outcomes are recorded, each holding a lease meanwhile.
    SlowClaims queue{0us, 5ms};
    midas::Registry registry;
    registry.add_json(
        "job", [](const json&, midas::TaskContext&) -> result<void> { return midas::success(); });
    std::vector<midas::TaskSpec> specs;
    for (int i = 0; i < 400; ++i) specs.push_back(registry.spec("job", json{{"i", i}}));
    REQUIRE(queue.enqueue_batch(specs));
    midas::Worker worker{queue, registry, {.concurrency = 2, .prefetch = 2, .log = {}}};
    CHECK(worker.run_until_idle().succeeded == 400);
    // The window is 4; at most twice that wait for the completer, which has one batch (at most
    // those) in flight: 4 + 8 + 8 tasks, give or take the few a claim adds before it is counted.
    CHECK(queue.most_unsettled() <= 24);
  }

  TEST_CASE("a prefetch set by the user is kept whatever the handlers take") {
    const auto limits = claim_limits(300, 0us, 2, 1);
    REQUIRE(!limits.empty());
    CHECK(largest(limits) <= 3);
    CHECK(limits.front() == 3);
  }
}

}  // namespace unit_test
