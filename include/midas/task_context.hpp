// SPDX-License-Identifier: MIT
#pragma once

#include <optional>
#include <stop_token>
#include <string>

#include "midas/error_classifier.hpp"
#include "midas/queue.hpp"
#include "midas/task.hpp"

namespace midas {

/// What a running handler sees: its task, the attempt number, a stop token, and the calls that
/// talk back to the queue under the task's lease.
///
/// Not thread-safe: use it from the handler's thread (the stop token may be read anywhere).
class TaskContext {
 public:
  TaskContext(Queue& queue, ClaimedTask claimed, std::stop_token stop, Duration lease_length);

  /// The task as it was claimed (attempt already counted; `checkpoint` holds the last progress).
  [[nodiscard]] const Task& task() const noexcept { return task_; }
  /// 1 for the first attempt.
  [[nodiscard]] int attempt() const noexcept { return task_.attempt; }
  /// The lease this attempt runs under.
  [[nodiscard]] const Lease& lease() const noexcept { return lease_; }
  /// Requested when the worker shuts down past its grace period or the lease is lost.
  [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_; }
  [[nodiscard]] bool stop_requested() const noexcept { return stop_.stop_requested(); }

  /// Extends the lease now (the worker also does it every heartbeat interval).
  [[nodiscard]] result<void> heartbeat();
  /// Durably records progress, fenced by the lease: after a crash the next attempt reads it from
  /// `saved_checkpoint()` and resumes after the last completed step instead of repeating it.
  /// `errc::lease_lost` if another worker owns the task now: stop, the step is not yours.
  [[nodiscard]] result<void> checkpoint(nlohmann::json progress);
  /// The progress last recorded by this or an earlier attempt (null if none).
  [[nodiscard]] const nlohmann::json& saved_checkpoint() const noexcept { return task_.checkpoint; }

  /// `return ctx.snooze(d);` — try again after `d`; this attempt does not count.
  [[nodiscard]] result<void> snooze(Duration d);
  /// `return ctx.retry_after(d);` — try again after `d` (counts as an attempt).
  [[nodiscard]] result<void> retry_after(Duration d, std::string reason = {});
  /// `return ctx.cancel("why");` — stop for good; the task ends cancelled.
  [[nodiscard]] result<void> cancel(std::string reason);
  /// `return ctx.fail("why");` — fail for good, whatever the retry policy says.
  [[nodiscard]] result<void> fail(std::string reason);

  /// The decision a handler made through the calls above, with its reason (for the worker).
  [[nodiscard]] const std::optional<Decision>& decision() const noexcept { return decision_; }
  [[nodiscard]] const std::string& decision_reason() const noexcept { return reason_; }

 private:
  result<void> decide(Decision d, std::string reason);

  Queue& queue_;
  Task task_;
  Lease lease_;
  std::stop_token stop_;
  Duration lease_length_;
  std::optional<Decision> decision_;
  std::string reason_;
};

}  // namespace midas
