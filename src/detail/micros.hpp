// SPDX-License-Identifier: MIT
#pragma once
/// Numbers as the backends store them: times as microseconds since the Unix epoch, integers as
/// decimal text. Shared by the Postgres and Redis backends (and their fuzz targets).

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "midas/clock.hpp"

namespace midas::detail {

/// The microseconds since the epoch a TimePoint can hold (about ±292 years).
inline constexpr std::int64_t max_time_us =
    std::chrono::duration_cast<std::chrono::microseconds>(TimePoint::duration::max()).count();
inline constexpr std::int64_t min_time_us = -max_time_us;

[[nodiscard]] inline bool fits_time(std::int64_t us) noexcept {
  return us >= min_time_us && us <= max_time_us;
}

/// A time from microseconds since the epoch, clamped to what a TimePoint holds (a stored value
/// out of that range would otherwise overflow the conversion).
[[nodiscard]] inline TimePoint from_us(std::int64_t us) noexcept {
  us = std::clamp(us, min_time_us, max_time_us);
  return TimePoint{std::chrono::duration_cast<TimePoint::duration>(std::chrono::microseconds{us})};
}

/// A whole decimal number and nothing else; nullopt otherwise.
[[nodiscard]] inline std::optional<std::int64_t> parse_int(std::string_view s) noexcept {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

[[nodiscard]] inline std::optional<int> narrow_int(std::optional<std::int64_t> v) noexcept {
  if (!v || *v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

}  // namespace midas::detail
