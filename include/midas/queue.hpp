// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "midas/clock.hpp"
#include "midas/log.hpp"
#include "midas/result.hpp"
#include "midas/task.hpp"

namespace midas {

/// What a worker asks for when it claims.
struct ClaimRequest {
  std::vector<std::string> queues{};        ///< Claimed from in the order given.
  std::size_t limit = 1;                    ///< Most tasks to claim in this call.
  std::string worker_id{};                  ///< Recorded as lease owner.
  Duration lease{std::chrono::seconds{8}};  ///< Lease length.
};

/// How an attempt ended, as a worker records it. The backend appends `record` to the history.
struct Settlement {
  /// succeeded, retrying, failed or cancelled.
  TaskStatus status = TaskStatus::succeeded;
  /// For retrying: when the next attempt is due.
  TimePoint run_at{};
  /// False for a snooze: the attempt is given back (attempt - 1).
  bool counts_attempt = true;
  AttemptRecord record{};
};

/// Which tasks `list` returns; empty fields match everything.
struct ListFilter {
  std::optional<std::string> queue{};
  std::optional<TaskStatus> status{};
  std::optional<std::string> type{};
  std::size_t limit = 100;
  std::size_t offset = 0;
};

/// Task counts for one queue.
struct QueueStats {
  std::string queue{};
  std::size_t pending = 0;  ///< Due or scheduled, never attempted or requeued.
  std::size_t running = 0;
  std::size_t retrying = 0;
  std::size_t succeeded = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;
  /// Age of the oldest due task that waits for a worker (pending or retrying with run_at <= now).
  std::optional<Duration> oldest_due_age{};
};

/// Counts per queue, plus what the backend found about its own durability.
struct Stats {
  std::vector<QueueStats> queues{};
  /// Warnings such as "Redis appendonly is off: tasks are lost on a server crash". Empty is good.
  std::vector<std::string> durability_warnings{};
};

/// The storage every backend implements (memory, Postgres, Redis).
///
/// Thread safety: every member may be called from many threads at once.
/// Errors: transient ones (`is_transient`) may be retried; `errc::in_doubt` must not be.
/// Fencing: every call that takes a `Lease` changes the task only if the task is running under
/// that very token; otherwise it fails with `errc::lease_lost` and changes nothing.
class Queue {
 public:
  virtual ~Queue() = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // --- producers --------------------------------------------------------------------------------

  /// Stores a task. A spec whose unique key is held by an unfinished task of the same queue
  /// stores nothing and returns that task's id with `duplicate = true`.
  [[nodiscard]] virtual result<Enqueued> enqueue(const TaskSpec& spec) = 0;
  /// Stores many tasks in one round trip. All specs are validated first; if one is invalid,
  /// nothing is stored. Results are in the order of `specs`.
  [[nodiscard]] virtual result<std::vector<Enqueued>> enqueue_batch(
      std::span<const TaskSpec> specs) = 0;

  // --- workers ----------------------------------------------------------------------------------

  /// Leases up to `limit` due tasks (status pending or retrying, run_at <= now) ordered by
  /// priority, run_at, id; each becomes running with attempt + 1 and a fresh lease token.
  /// A task is never handed to two claimers.
  [[nodiscard]] virtual result<std::vector<ClaimedTask>> claim(const ClaimRequest& request) = 0;
  /// Extends the leases; returns the ids whose lease was lost (they must stop).
  [[nodiscard]] virtual result<std::vector<TaskId>> heartbeat(std::span<const Lease> leases,
                                                              Duration lease) = 0;
  /// Records how an attempt ended (fenced).
  [[nodiscard]] virtual result<void> settle(const Lease& lease, const Settlement& s) = 0;
  /// Records many outcomes, in one round trip where the backend can (a worker acks what finished
  /// while its previous ack was in flight). One code per item, in order: empty when recorded,
  /// `errc::lease_lost` when fenced out, or the error of the whole call. The default calls
  /// settle() for each.
  [[nodiscard]] virtual result<std::vector<std::error_code>> settle_batch(
      std::span<const std::pair<Lease, Settlement>> items) {
    std::vector<std::error_code> out;
    out.reserve(items.size());
    for (const auto& [lease, s] : items) {
      auto r = settle(lease, s);
      out.push_back(r ? std::error_code{} : r.error());
    }
    return out;
  }
  /// Durably records a handler's progress (fenced). The next attempt sees it in Task::checkpoint.
  [[nodiscard]] virtual result<void> checkpoint(const Lease& lease,
                                                const nlohmann::json& progress) = 0;
  /// Running tasks whose lease expired before now, oldest deadline first, with their leases.
  [[nodiscard]] virtual result<std::vector<ClaimedTask>> expired(
      std::span<const std::string> queues, std::size_t limit) = 0;
  /// Settles a task whose lease expired (what a rescuer decided). Fenced like settle, and applied
  /// only while the lease is still expired: if its owner heartbeated meanwhile, `errc::lease_lost`.
  [[nodiscard]] virtual result<void> rescue(const Lease& lease, const Settlement& s) = 0;
  /// Blocks until a task may be ready in one of `queues` (true), or until `max_wait` passes
  /// (false). Backends wake up on enqueue (condition variable, LISTEN/NOTIFY, blocking pop).
  [[nodiscard]] virtual result<bool> wait_for_tasks(std::span<const std::string> queues,
                                                    Duration max_wait) = 0;

  // --- operators --------------------------------------------------------------------------------

  /// The task with its whole history; `errc::task_not_found` if there is none.
  [[nodiscard]] virtual result<Task> get(const TaskId& id) = 0;
  /// Tasks matching `filter`, newest first.
  [[nodiscard]] virtual result<std::vector<Task>> list(const ListFilter& filter) = 0;
  /// Cancels a pending or retrying task. Already cancelled: success. Running or finished
  /// otherwise: `errc::invalid_state`.
  [[nodiscard]] virtual result<void> cancel(const TaskId& id) = 0;
  /// Puts a failed or cancelled task back to pending, due now, with a fresh set of attempts; its
  /// history is kept. Other statuses: `errc::invalid_state`; a unique key now held by another
  /// unfinished task: `errc::duplicate_task`.
  [[nodiscard]] virtual result<void> requeue(const TaskId& id) = 0;
  /// Deletes up to `limit` finished tasks that finished before `cutoff`; returns how many.
  [[nodiscard]] virtual result<std::size_t> prune(TimePoint cutoff, std::size_t limit) = 0;
  /// Counts per queue and status (only the queue named, if one is).
  [[nodiscard]] virtual result<Stats> stats(const std::optional<std::string>& queue) = 0;
  /// Creates or upgrades the backend's schema; a no-op where there is none.
  [[nodiscard]] virtual result<void> migrate() { return success(); }
  /// The clock this queue stamps times with.
  [[nodiscard]] virtual const Clock& clock() const noexcept = 0;

 protected:
  Queue() = default;
};

/// Options every backend understands.
struct ConnectOptions {
  /// Time source for run_at, leases and history; nullptr: SystemClock::instance().
  const Clock* clock = nullptr;
  /// Where the backend reports connection trouble and durability findings (empty: silent).
  LogSink log = log_to_stderr;
};

/// Opens the backend a URL names:
/// - `memory://` — in-process, thread-safe, not durable (each call makes a new, empty queue);
/// - `postgresql://user:pass@host:port/db?schema=midas` (also `postgres://`);
/// - `redis://[:password@]host:port[/db]?prefix=midas`.
///
/// Errors: `errc::invalid_url`, `errc::unsupported_scheme`, `errc::backend_not_built`,
/// `errc::backend_unavailable`.
[[nodiscard]] result<std::unique_ptr<Queue>> connect(std::string_view url,
                                                     ConnectOptions options = {});

/// A new in-process queue.
[[nodiscard]] std::unique_ptr<Queue> make_memory_queue(ConnectOptions options = {});

}  // namespace midas
