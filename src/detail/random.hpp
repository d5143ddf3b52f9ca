// SPDX-License-Identifier: MIT
#pragma once

#include <random>
#include <string>

namespace midas::detail {

/// 128 random bits as 32 hex digits: lease tokens and worker ids. Thread-safe.
inline std::string random_token() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int half = 0; half < 2; ++half) {
    auto bits = engine();
    for (int i = 0; i < 16; ++i) {
      out[static_cast<std::size_t>(half * 16 + i)] = hex[bits & 0xf];
      bits >>= 4;
    }
  }
  return out;
}

}  // namespace midas::detail
