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
  explicit SlowClaims(std::chrono::microseconds delay) : delay_{delay} {}

  [[nodiscard]] std::vector<std::size_t> limits() const {
    std::lock_guard lock{mutex_};
    return limits_;
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
    }
    std::this_thread::sleep_for(delay_);
    return inner_->claim(request);
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
    return inner_->settle_batch(items);
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
  mutable std::mutex mutex_;
  std::vector<std::size_t> limits_;
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

  TEST_CASE("a prefetch set by the user is kept whatever the handlers take") {
    const auto limits = claim_limits(300, 0us, 2, 1);
    REQUIRE(!limits.empty());
    CHECK(largest(limits) <= 3);
    CHECK(limits.front() == 3);
  }
}

}  // namespace unit_test
