// SPDX-License-Identifier: MIT
#include "midas/retry_policy.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "midas/task.hpp"

namespace midas {
namespace {

// Milliseconds as double -> Duration, saturating at `cap` (and at 0 below).
Duration clamp_ms(double ms, Duration cap) {
  if (!(ms > 0)) return Duration{0};  // also NaN
  if (ms >= static_cast<double>(cap.count())) return cap;
  return Duration{static_cast<Duration::rep>(std::llround(ms))};
}

}  // namespace

double default_random() noexcept {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>{0.0, 1.0}(engine);
}

RetryPolicy RetryPolicy::exponential(double base, Duration unit) {
  RetryPolicy p;
  p.curve_ = Curve::exponential;
  p.factor_ = base;
  p.unit_ = unit;
  return p;
}

RetryPolicy RetryPolicy::polynomial(double exponent, Duration unit) {
  RetryPolicy p;
  p.curve_ = Curve::polynomial;
  p.factor_ = exponent;
  p.unit_ = unit;
  return p;
}

RetryPolicy RetryPolicy::fixed(Duration delay) {
  RetryPolicy p;
  p.curve_ = Curve::fixed;
  p.unit_ = delay;
  return p;
}

RetryPolicy RetryPolicy::custom(std::function<Duration(int attempt)> curve) {
  RetryPolicy p;
  p.curve_ = Curve::custom;
  p.custom_ = std::move(curve);
  return p;
}

RetryPolicy RetryPolicy::standard() {
  RetryPolicy p = exponential(2, std::chrono::seconds{1});
  p.max_attempts(default_max_attempts)
      .offset(std::chrono::seconds{15})
      .cap(std::chrono::hours{6})
      .jitter(Jitter::proportional, 0.1);
  return p;
}

RetryPolicy& RetryPolicy::max_attempts(int n) noexcept {
  max_attempts_ = std::max(n, 1);
  return *this;
}

RetryPolicy& RetryPolicy::offset(Duration d) noexcept {
  offset_ = std::max(d, Duration{0});
  return *this;
}

RetryPolicy& RetryPolicy::cap(Duration d) noexcept {
  cap_ = std::max(d, Duration{0});
  return *this;
}

RetryPolicy& RetryPolicy::jitter(Jitter j, double fraction) noexcept {
  jitter_ = j;
  jitter_fraction_ = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 10.0) : 0.0;
  return *this;
}

RetryPolicy& RetryPolicy::random_source(RandomSource r) {
  random_ = std::move(r);
  return *this;
}

Duration RetryPolicy::base_delay(int attempt) const {
  const int n = std::max(attempt, 1);
  const double unit = static_cast<double>(unit_.count());
  double ms = 0;
  switch (curve_) {
    case Curve::exponential:
      ms = std::pow(factor_, n) * unit;
      break;
    case Curve::polynomial:
      ms = std::pow(static_cast<double>(n), factor_) * unit;
      break;
    case Curve::fixed:
      ms = unit;
      break;
    case Curve::custom:
      ms = custom_ ? static_cast<double>(custom_(n).count()) : 0.0;
      break;
  }
  return clamp_ms(ms + static_cast<double>(offset_.count()), cap_);
}

Duration RetryPolicy::delay(int attempt) const {
  const Duration d = base_delay(attempt);
  if (jitter_ == Jitter::none || d.count() == 0) return d;
  double r = random_ ? random_() : default_random();
  r = std::isfinite(r) ? std::clamp(r, 0.0, 1.0) : 0.0;
  const double ms = static_cast<double>(d.count());
  switch (jitter_) {
    case Jitter::none:
      break;
    case Jitter::full:
      return clamp_ms(ms * r, cap_);
    case Jitter::equal:
      return clamp_ms(ms / 2 + ms / 2 * r, cap_);
    case Jitter::proportional:
      return clamp_ms(ms + ms * jitter_fraction_ * r, cap_);
  }
  return d;
}

}  // namespace midas
