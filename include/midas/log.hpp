// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <string_view>

namespace midas {

/// Severity of a midas log line.
enum class LogLevel { debug, info, warning, error };

/// Where midas components write what they have to say. Must be thread-safe.
using LogSink = std::function<void(LogLevel, std::string_view message)>;

/// The default sink: warnings and errors to stderr, one line each.
void log_to_stderr(LogLevel level, std::string_view message);

/// "debug", "info", "warning", "error".
[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;

}  // namespace midas
