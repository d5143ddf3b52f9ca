// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "midas/clock.hpp"
#include "midas/result.hpp"

namespace midas {

/// A task's id, assigned by the backend at enqueue. Opaque: compare and print it, do not parse it.
using TaskId = std::string;

/// Where a task is in its lifecycle (DESIGN.md section 3).
enum class TaskStatus {
  pending,    ///< Waiting for its run_at, or due and waiting for a worker.
  running,    ///< Leased by a worker.
  retrying,   ///< An attempt failed; waiting for the next one.
  succeeded,  ///< Finished: the handler succeeded.
  failed,     ///< Finished: failed for good, or attempts used up (dead-letter set).
  cancelled,  ///< Finished: cancelled by an operator or by the handler.
};

/// The status as stored and shown: "pending", "running", ...
[[nodiscard]] std::string_view to_string(TaskStatus s) noexcept;
/// Parses a status name; `errc::invalid_argument` for anything else.
[[nodiscard]] result<TaskStatus> parse_task_status(std::string_view name);
/// True for succeeded, failed and cancelled.
[[nodiscard]] constexpr bool is_finished(TaskStatus s) noexcept {
  return s == TaskStatus::succeeded || s == TaskStatus::failed || s == TaskStatus::cancelled;
}

/// What went wrong in one attempt, as recorded in the history.
struct ErrorInfo {
  std::string type{};                ///< Root-cause exception type, or the error category name.
  std::string message{};             ///< Root-cause message.
  std::string code{};                ///< "category:value" of the error code, if any.
  std::optional<int> http_status{};  ///< HTTP status carried by the error, if any.
  /// What the root cause was wrapped in: the messages of the enclosing exceptions of a
  /// `std::throw_with_nested` chain, outermost first. Empty when it was not wrapped.
  std::vector<std::string> context{};
  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

/// One attempt in a task's history (the original service's `audit_data`).
struct AttemptRecord {
  int attempt = 0;                   ///< 1 for the first attempt.
  TimePoint started_at{};            ///< When the attempt was claimed.
  TimePoint finished_at{};           ///< When its outcome was recorded.
  std::string worker_id{};           ///< The worker that ran it.
  std::optional<ErrorInfo> error{};  ///< Empty when the attempt succeeded.
  std::string
      decision{};  ///< succeeded, retry, retry_after, snooze, fail, cancel, lease_expired...
  std::optional<TimePoint> next_run_at{};  ///< When the next attempt is due, if one was scheduled.
  friend bool operator==(const AttemptRecord&, const AttemptRecord&) = default;
};

/// A stored task.
struct Task {
  TaskId id{};
  std::string type{};
  std::string queue{};
  nlohmann::json params = nlohmann::json::object();
  TaskStatus status = TaskStatus::pending;
  int attempt = 0;       ///< Attempts started so far (a snoozed attempt is not counted).
  int max_attempts = 0;  ///< Including the first attempt.
  int priority = 0;      ///< Lower runs first.
  TimePoint run_at{};    ///< Not claimed before this.
  std::optional<std::string> unique_key{};
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<TimePoint> finished_at{};
  std::optional<std::string> lease_owner{};     ///< Worker id while running.
  std::optional<TimePoint> lease_expires_at{};  ///< Lease deadline while running.
  nlohmann::json checkpoint{};  ///< Last progress the handler recorded (null if none).
  std::vector<AttemptRecord> history{};
};

/// Default number of attempts when neither the spec nor the registry says.
inline constexpr int default_max_attempts = 20;
/// Largest params document (serialised) a backend accepts.
inline constexpr std::size_t max_params_bytes = 1024 * 1024;

/// What a producer enqueues.
struct TaskSpec {
  std::string type{};                                ///< Selects the handler; required.
  nlohmann::json params = nlohmann::json::object();  ///< Handler input.
  std::string queue = "default";
  int priority = 0;                   ///< Lower runs first.
  std::optional<TimePoint> run_at{};  ///< Absolute time of the first attempt.
  Duration delay{0};                  ///< Relative to enqueue time; used when run_at is empty.
  std::optional<std::string> unique_key{};  ///< At most one unfinished task per (queue, key).
  int max_attempts = 0;                     ///< 0: default_max_attempts.
};

/// Checks a spec before it is stored: names, sizes, attempts. Backends call it; so can producers.
[[nodiscard]] result<void> validate(const TaskSpec& spec);

/// True when `name` may name a queue or a task type: 1 to 128 characters of [A-Za-z0-9_.:-].
[[nodiscard]] bool is_valid_name(std::string_view name) noexcept;

/// The result of an enqueue.
struct Enqueued {
  TaskId id{};
  bool duplicate =
      false;  ///< True when an unfinished task with the same unique key existed; `id` is its id.
  friend bool operator==(const Enqueued&, const Enqueued&) = default;
};

/// Proof that a worker holds a task: every worker transition is fenced by the token.
struct Lease {
  TaskId id{};
  std::string token{};
  std::string worker_id{};
  TimePoint expires_at{};
};

/// A task handed to a worker, with its lease.
struct ClaimedTask {
  Task task{};
  Lease lease{};
};

/// Formats a time as ISO 8601 UTC with milliseconds: 2026-11-27T19:06:00.123Z.
[[nodiscard]] std::string format_time(TimePoint t);
/// Parses what format_time writes (fraction optional, 'Z' or +00:00); `errc::invalid_argument`
/// otherwise.
[[nodiscard]] result<TimePoint> parse_time(std::string_view text);

void to_json(nlohmann::json& j, TaskStatus s);
void from_json(const nlohmann::json& j, TaskStatus& s);
void to_json(nlohmann::json& j, const ErrorInfo& e);
void from_json(const nlohmann::json& j, ErrorInfo& e);
void to_json(nlohmann::json& j, const AttemptRecord& a);
void from_json(const nlohmann::json& j, AttemptRecord& a);
void to_json(nlohmann::json& j, const Task& t);
void from_json(const nlohmann::json& j, Task& t);
void to_json(nlohmann::json& j, const TaskSpec& s);
void from_json(const nlohmann::json& j, TaskSpec& s);

}  // namespace midas
