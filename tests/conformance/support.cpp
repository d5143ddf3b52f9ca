// SPDX-License-Identifier: MIT
#include <algorithm>
#include <cstdio>
#include <utility>

#include "conformance.hpp"

namespace midas::testing {

Backend& backend() {
  static const std::unique_ptr<Backend> instance = make_backend();
  return *instance;
}

bool backend_unavailable() {
  static const bool unavailable = [] {
    const std::string reason = backend().unavailable_reason();
    if (reason.empty()) return false;
    std::fprintf(stderr, "conformance cases for the %s backend are skipped: %s\n",
                 backend().name().c_str(), reason.c_str());
    return true;
  }();
  return unavailable;
}

Env::Env() : queue_{ok(backend().make(clock))} {
  REQUIRE(queue_ != nullptr);
  REQUIRE(&queue_->clock() == &clock);
}

LogLines::LogLines() : state_{std::make_shared<State>()} {}

LogSink LogLines::sink() const {
  return [state = state_](LogLevel level, std::string_view message) {
    std::lock_guard lock{state->mutex};
    state->lines.push_back(std::string{to_string(level)} + ": " + std::string{message});
  };
}

std::vector<std::string> LogLines::lines() const {
  std::lock_guard lock{state_->mutex};
  return state_->lines;
}

WorkerOptions worker_options(const LogLines& log, std::vector<std::string> queues, bool passive) {
  const Duration timer = passive ? Duration{std::chrono::hours{1}} : Duration{10ms};
  return WorkerOptions{.queues = std::move(queues),
                       .concurrency = 2,
                       .lease = 8s,
                       .heartbeat_interval = passive ? timer : Duration{2s},
                       .poll_interval = 10ms,
                       .rescue_interval = timer,
                       .shutdown_grace = 2s,
                       .backoff_min = 1ms,
                       .backoff_max = 10ms,
                       .id = std::string{worker_id},
                       .log = log.sink()};
}

TaskSpec spec(std::string type, std::string queue) {
  TaskSpec s;
  s.type = std::move(type);
  s.queue = std::move(queue);
  return s;
}

std::vector<ClaimedTask> claim(Queue& q, std::vector<std::string> queues, std::size_t limit,
                               std::string worker, Duration lease) {
  return ok(q.claim(ClaimRequest{.queues = std::move(queues),
                                 .limit = limit,
                                 .worker_id = std::move(worker),
                                 .lease = lease}));
}

ClaimedTask claim_one(Queue& q, std::string queue, std::string worker, Duration lease) {
  auto claimed = claim(q, {std::move(queue)}, 1, std::move(worker), lease);
  REQUIRE(claimed.size() == 1);
  return std::move(claimed.front());
}

Settlement settlement(const ClaimedTask& c, TaskStatus status, TimePoint now, TimePoint run_at,
                      std::string decision) {
  Settlement s;
  s.status = status;
  s.run_at = run_at;
  s.record.attempt = c.task.attempt;
  s.record.started_at = c.lease.expires_at - 8s;
  s.record.finished_at = now;
  s.record.worker_id = c.lease.worker_id;
  if (decision.empty()) {
    switch (status) {
      case TaskStatus::succeeded:
        decision = "succeeded";
        break;
      case TaskStatus::retrying:
        decision = "retry";
        break;
      case TaskStatus::failed:
        decision = "fail";
        break;
      case TaskStatus::cancelled:
        decision = "cancel";
        break;
      default:
        decision = "?";
        break;
    }
  }
  if (status != TaskStatus::succeeded) {
    s.record.error = ErrorInfo{.type = "std::runtime_error",
                               .message = "attempt " + std::to_string(c.task.attempt) + " failed",
                               .code = {},
                               .http_status = {}};
  }
  if (status == TaskStatus::retrying) s.record.next_run_at = run_at;
  s.record.decision = std::move(decision);
  return s;
}

std::vector<TaskId> ids(const std::vector<ClaimedTask>& claimed) {
  std::vector<TaskId> out;
  for (const auto& c : claimed) out.push_back(c.task.id);
  return out;
}

std::vector<TaskId> ids(const std::vector<Task>& tasks) {
  std::vector<TaskId> out;
  for (const auto& t : tasks) out.push_back(t.id);
  return out;
}

std::vector<std::string> decisions(const Task& t) {
  std::vector<std::string> out;
  for (const auto& r : t.history) out.push_back(r.decision);
  return out;
}

TaskId add(Queue& q, const TaskSpec& s, std::source_location loc) {
  Enqueued e = ok(q.enqueue(s), loc);
  if (e.duplicate) {
    ADD_FAIL_AT(loc.file_name(), static_cast<int>(loc.line()),
                "unexpected duplicate of task " << e.id);
  }
  return e.id;
}

ClaimedTask add_and_claim(Queue& q, const TaskSpec& s, std::string worker) {
  const TaskId id = add(q, s);
  ClaimedTask c = claim_one(q, s.queue, std::move(worker));
  REQUIRE(c.task.id == id);
  return c;
}

std::optional<QueueStats> find_queue(const Stats& s, std::string_view queue) {
  auto it = std::find_if(s.queues.begin(), s.queues.end(),
                         [&](const QueueStats& qs) { return qs.queue == queue; });
  if (it == s.queues.end()) return std::nullopt;
  return *it;
}

}  // namespace midas::testing
