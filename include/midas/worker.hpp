// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "midas/log.hpp"
#include "midas/queue.hpp"
#include "midas/registry.hpp"

namespace midas {

/// How a Worker runs. Every member has a default; designated initializers pick what to change.
struct WorkerOptions {
  std::vector<std::string> queues{"default"};  ///< Claimed in this order.
  int concurrency = 4;                         ///< Handler threads.
  /// Tasks claimed beyond the idle handler threads, so that the next claim overlaps with the
  /// handlers still running: claimed tasks wait for the next free thread (heartbeated like the
  /// running ones), at most `concurrency + prefetch` of them waiting or running at once.
  /// -1 (or less): adaptive. The worker measures its handlers' and its claims' durations and
  /// claims ahead what its threads get through in two claim round trips: at least
  /// `concurrency`, at most max(`concurrency`, min(16 x `concurrency`, 256)). While every thread
  /// has run one task for longer than the handlers measured so far, it claims as if tasks took
  /// that long; tasks it claimed while handlers were short stay claimed. 0: claim only for idle
  /// threads (fairest between workers when tasks are long and few). Any other value: that many,
  /// always. Besides, claims pause while twice the window of outcomes wait to be recorded.
  int prefetch = -1;
  Duration lease{std::chrono::seconds{8}};  ///< Lease length per claim and heartbeat.
  Duration heartbeat_interval{
      std::chrono::seconds{2}};                       ///< All running leases renewed in one call.
  Duration poll_interval{std::chrono::seconds{1}};    ///< Longest idle wait between claims.
  Duration rescue_interval{std::chrono::seconds{1}};  ///< How often expired leases are looked for.
  Duration shutdown_grace{std::chrono::seconds{10}};  ///< stop(): time running handlers get to end.
  Duration backoff_min{std::chrono::milliseconds{100}};  ///< First wait after a backend error.
  Duration backoff_max{std::chrono::seconds{5}};         ///< Longest wait after backend errors.
  std::string id{};  ///< Worker id in leases and history; empty: host:pid:random.
  LogSink log = log_to_stderr;
};

/// What a worker did so far.
struct WorkerStats {
  std::uint64_t claimed = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t retried = 0;  ///< Attempts that ended in a retry (retry, retry_after).
  std::uint64_t snoozed = 0;
  std::uint64_t failed = 0;  ///< Tasks failed for good.
  std::uint64_t cancelled = 0;
  std::uint64_t rescued = 0;     ///< Expired leases of other (dead) workers taken back.
  std::uint64_t lease_lost = 0;  ///< Outcomes rejected because the lease was gone.
  std::uint64_t backend_errors = 0;
};

/// Claims tasks from queues, runs their handlers on a pool of threads, heartbeats their leases,
/// records every attempt, and applies classifier then retry policy to failures.
///
/// A handler may throw anything (also non-std::exception types): the attempt fails, the worker
/// goes on. When the backend is unavailable the worker backs off and keeps trying.
/// The queue and the registry must outlive the worker. Member functions are not meant to be
/// called concurrently with each other (start/stop from one controlling thread).
class Worker {
 public:
  Worker(Queue& queue, const Registry& registry, WorkerOptions options = {});
  ~Worker();  ///< Calls stop().
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Starts the threads and returns; the worker runs until stop().
  void start();
  /// Stops claiming, gives back the tasks claimed ahead that no handler started (a snooze that
  /// keeps their place in line), lets running handlers finish within the grace period while
  /// heartbeating their leases (then requests their stop tokens and waits for them), and
  /// returns. Safe to call twice.
  void stop();
  /// Runs until no due task is left in the worker's queues and none is running, then returns.
  /// Tasks scheduled for later (by run_at, retry or snooze) are left for a later call.
  /// Returns what this call did.
  WorkerStats run_until_idle();
  /// Counts since construction. Thread-safe.
  [[nodiscard]] WorkerStats stats() const;
  /// This worker's id.
  [[nodiscard]] const std::string& id() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace midas
