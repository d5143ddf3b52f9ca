// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <chrono>

namespace midas {

/// Wall-clock time as midas stores it (run_at, lease deadlines, history).
using TimePoint = std::chrono::system_clock::time_point;
/// Durations in midas APIs; any std::chrono duration converts to it.
using Duration = std::chrono::milliseconds;

/// An injectable time source. Backends and workers read time only through one, so retries and
/// leases are tested by moving a `ManualClock` instead of sleeping. Implementations are
/// thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  /// The current time.
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
};

/// `std::chrono::system_clock`.
class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const noexcept override { return std::chrono::system_clock::now(); }
  /// A process-wide instance, the default of every component that takes a clock.
  static SystemClock& instance() noexcept {
    static SystemClock clock;
    return clock;
  }
};

/// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  /// Starts at `start` (by default a fixed, recognisable instant: 2030-01-01T00:00:00Z).
  explicit ManualClock(TimePoint start = TimePoint{std::chrono::seconds{1893456000}}) noexcept
      : now_{start.time_since_epoch().count()} {}
  [[nodiscard]] TimePoint now() const noexcept override {
    return TimePoint{TimePoint::duration{now_.load()}};
  }
  /// Moves the clock forward by `d`.
  void advance(std::chrono::nanoseconds d) noexcept {
    now_ += std::chrono::duration_cast<TimePoint::duration>(d).count();
  }
  /// Sets the clock to `t`.
  void set(TimePoint t) noexcept { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<TimePoint::duration::rep> now_;
};

}  // namespace midas
