// SPDX-License-Identifier: MIT
#include "crypto/labels.hpp"

#include <array>
#include <cmath>
#include <cstdio>

#include "crypto/credentials.hpp"

namespace midas_api::crypto {

std::string minify_number(std::int64_t n) {
  if (n < 10000) return std::to_string(n);
  static constexpr std::array<char, 4> kSuffix{'k', 'M', 'B', 'T'};
  std::int64_t total = n;
  std::size_t count = 0;
  // The original: `while total / 1000 > 1` with true division, i.e. while total > 1000. It runs
  // at least once, as n >= 10000.
  do {
    total /= 1000;
    ++count;
  } while (total > 1000 && count < kSuffix.size());
  return std::to_string(total) + kSuffix[count - 1];
}

std::string points_label(double points) {
  if (!std::isfinite(points) || points >= 9.2e18 || points <= -9.2e18) return "0";
  return minify_number(static_cast<std::int64_t>(std::trunc(points)));
}

std::string value_label(double value) {
  if (!std::isfinite(value)) return "Reward";
  std::array<char, 400> buf{};  // %.2f of the largest double is about 310 characters
  std::snprintf(buf.data(), buf.size(), "%.2f", value);
  std::string text = buf.data();
  if (text == "-0.00") text = "0.00";
  return cap_value_label("£" + text);
}

std::string cap_value_label(std::string_view label) {
  if (utf8_length(label) > kMaxValueLabelLength) return "Reward";
  return std::string(label);
}

}  // namespace midas_api::crypto
