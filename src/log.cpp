// SPDX-License-Identifier: MIT
#include "midas/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace midas {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "unknown";
}

void log_to_stderr(LogLevel level, std::string_view message) {
  if (level < LogLevel::warning) return;
  static std::mutex mutex;
  std::string line = "midas ";
  line += to_string(level);
  line += ": ";
  line += message;
  line += '\n';
  std::lock_guard lock{mutex};
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace midas
