// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <functional>

#include "midas/clock.hpp"

namespace midas {

/// A source of uniform random numbers in [0, 1), for jitter. Must be safe to call from many
/// threads.
using RandomSource = std::function<double()>;

/// The default random source (a thread-local Mersenne Twister seeded from std::random_device).
[[nodiscard]] double default_random() noexcept;

/// How jitter spreads a computed delay `d`.
enum class Jitter {
  none,          ///< exactly d
  full,          ///< uniform in [0, d]
  equal,         ///< d/2 + uniform in [0, d/2]
  proportional,  ///< d + uniform in [0, d * fraction]  (the default: +0-10%)
};

/// When to try a failed task again, and how many times.
///
/// The delay after attempt `n` (1 for the first attempt) is `offset + curve(n)`, capped at `cap`,
/// then spread by jitter. Copyable value type; `delay()` is thread-safe.
class RetryPolicy {
 public:
  /// `base^n * unit`. The Midas join policy is `exponential(3, 60s)`: 180 s, 540 s, 1620 s.
  [[nodiscard]] static RetryPolicy exponential(double base, Duration unit);
  /// `n^exponent * unit` (Sidekiq-style curves).
  [[nodiscard]] static RetryPolicy polynomial(double exponent, Duration unit);
  /// The same delay every time.
  [[nodiscard]] static RetryPolicy fixed(Duration delay);
  /// Any function of the attempt number.
  [[nodiscard]] static RetryPolicy custom(std::function<Duration(int attempt)> curve);
  /// The default: 20 attempts, `15 s + 2^n s`, +0-10% jitter, capped at 6 h.
  [[nodiscard]] static RetryPolicy standard();

  /// Attempts including the first; tasks enqueued through a Registry get this as max_attempts.
  RetryPolicy& max_attempts(int n) noexcept;
  /// A constant added to every delay (before the cap).
  RetryPolicy& offset(Duration d) noexcept;
  /// The longest delay.
  RetryPolicy& cap(Duration d) noexcept;
  /// How to spread delays; `fraction` is used by Jitter::proportional.
  RetryPolicy& jitter(Jitter j, double fraction = 0.1) noexcept;
  /// Where jitter draws its random numbers (default: default_random).
  RetryPolicy& random_source(RandomSource r);

  [[nodiscard]] int max_attempts() const noexcept { return max_attempts_; }
  [[nodiscard]] Duration cap() const noexcept { return cap_; }
  [[nodiscard]] Jitter jitter() const noexcept { return jitter_; }

  /// The delay before the attempt after attempt `attempt` (1-based), jitter applied.
  [[nodiscard]] Duration delay(int attempt) const;
  /// The same without jitter: what the schedule says.
  [[nodiscard]] Duration base_delay(int attempt) const;
  /// True when a task that has started `attempt` attempts may have another.
  [[nodiscard]] bool can_retry(int attempt) const noexcept { return attempt < max_attempts_; }

 private:
  enum class Curve { exponential, polynomial, fixed, custom };
  Curve curve_ = Curve::fixed;
  double factor_ = 0;  // base (exponential) or exponent (polynomial)
  Duration unit_{0};
  std::function<Duration(int)> custom_{};
  int max_attempts_ = 20;
  Duration offset_{0};
  Duration cap_{std::chrono::hours{6}};
  Jitter jitter_ = Jitter::none;
  double jitter_fraction_ = 0.1;
  RandomSource random_{};
};

}  // namespace midas
