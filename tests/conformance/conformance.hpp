// SPDX-License-Identifier: MIT
#pragma once
/// What the conformance cases share: a fresh queue per case, result helpers, log capture,
/// and how doctest prints midas values.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <midas/midas.hpp>
#include <mutex>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "factory.hpp"

/// A conformance case: skipped (reported as such by doctest) when the backend cannot run here.
#define MIDAS_CONFORMANCE_CASE(name) \
  TEST_CASE(name* doctest::skip(::midas::testing::backend_unavailable()))

namespace midas::testing {

using namespace std::chrono_literals;

/// A fresh, empty queue of the backend under test and the manual clock it reads.
/// The clock is declared first so it outlives the queue.
class Env {
 public:
  Env();
  ManualClock clock{};
  [[nodiscard]] Queue& q() noexcept { return *queue_; }
  [[nodiscard]] TimePoint now() const noexcept { return clock.now(); }

 private:
  std::unique_ptr<Queue> queue_;
};

/// The value of `r`; fails the case (at the caller's line) with the error's message otherwise.
template <class T>
T ok(result<T> r, const std::source_location loc = std::source_location::current()) {
  if (!r) {
    ADD_FAIL_AT(loc.file_name(), static_cast<int>(loc.line()),
                "expected success, got error: " << r.error().message());
  }
  return std::move(r).value();
}

/// The error of `r`, or an empty error_code when it succeeded (so a CHECK can print it).
template <class T>
[[nodiscard]] std::error_code err(const result<T>& r) {
  return r ? std::error_code{} : r.error();
}

/// Collects the lines a worker logs, so the test output stays clean. Thread-safe; copies share
/// the lines.
class LogLines {
 public:
  LogLines();
  [[nodiscard]] LogSink sink() const;
  [[nodiscard]] std::vector<std::string> lines() const;

 private:
  struct State {
    mutable std::mutex mutex;
    std::vector<std::string> lines;
  };
  std::shared_ptr<State> state_;
};

/// Options for a worker in a case: small pool, fixed id, quiet log, short real-time waits.
/// `passive`: no timed heartbeat or rescue of its own while a handler runs (the case drives them).
[[nodiscard]] WorkerOptions worker_options(const LogLines& log,
                                           std::vector<std::string> queues = {"default"},
                                           bool passive = false);

/// The id every worker made by worker_options() uses.
inline constexpr std::string_view worker_id = "conformance-worker";

/// A spec of type `type` in `queue`.
[[nodiscard]] TaskSpec spec(std::string type, std::string queue = "default");

/// Claims at most `limit` tasks from `queues` for `worker`.
[[nodiscard]] std::vector<ClaimedTask> claim(Queue& q, std::vector<std::string> queues,
                                             std::size_t limit = 1, std::string worker = "w1",
                                             Duration lease = 8s);
/// Claims exactly one task from `queue` (fails the case otherwise).
[[nodiscard]] ClaimedTask claim_one(Queue& q, std::string queue = "default",
                                    std::string worker = "w1", Duration lease = 8s);

/// A settlement as a worker would record it for claimed task `c` at `now`: an error is recorded
/// unless the status is succeeded; `decision` defaults from the status.
[[nodiscard]] Settlement settlement(const ClaimedTask& c, TaskStatus status, TimePoint now,
                                    TimePoint run_at = {}, std::string decision = {});

/// The ids of claimed tasks, in order.
[[nodiscard]] std::vector<TaskId> ids(const std::vector<ClaimedTask>& claimed);
/// The ids of tasks, in order.
[[nodiscard]] std::vector<TaskId> ids(const std::vector<Task>& tasks);
/// The decisions of a task's history, in order.
[[nodiscard]] std::vector<std::string> decisions(const Task& t);

/// Enqueues `s` and returns the new task's id (fails the case if it was an error or a duplicate).
TaskId add(Queue& q, const TaskSpec& s, std::source_location loc = std::source_location::current());

/// Enqueues `s` and claims it, returning it under a lease (the queue must hold no other due task
/// of `s.queue` that would come first).
ClaimedTask add_and_claim(Queue& q, const TaskSpec& s, std::string worker = "w1");

/// The per-queue stats of `queue` in `s`, if listed.
[[nodiscard]] std::optional<QueueStats> find_queue(const Stats& s, std::string_view queue);

/// True when `haystack` contains `needle`.
[[nodiscard]] inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace midas::testing

namespace doctest {

template <>
struct StringMaker<midas::TaskStatus> {
  static String convert(const midas::TaskStatus& s) {
    return std::string{midas::to_string(s)}.c_str();
  }
};

template <>
struct StringMaker<midas::TimePoint> {
  static String convert(const midas::TimePoint& t) { return midas::format_time(t).c_str(); }
};

template <>
struct StringMaker<std::chrono::milliseconds> {
  static String convert(const std::chrono::milliseconds& d) {
    return (std::to_string(d.count()) + "ms").c_str();
  }
};

template <>
struct StringMaker<nlohmann::json> {
  static String convert(const nlohmann::json& j) { return j.dump().c_str(); }
};

template <class T>
struct StringMaker<std::vector<T>> {
  static String convert(const std::vector<T>& v) {
    String out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ", ";
      out += StringMaker<T>::convert(v[i]);
    }
    out += "]";
    return out;
  }
};

template <class T>
struct StringMaker<std::optional<T>> {
  static String convert(const std::optional<T>& o) {
    return o ? StringMaker<T>::convert(*o) : String{"nullopt"};
  }
};

}  // namespace doctest
