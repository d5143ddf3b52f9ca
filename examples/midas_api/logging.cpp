// SPDX-License-Identifier: MIT
#include "logging.hpp"

#include <cctype>
#include <chrono>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

namespace midas_api {
namespace {

std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::optional<Level> parse_level(std::string_view text) {
  std::string s;
  for (char c : text) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warning" || s == "warn") return Level::warning;
  if (s == "error") return Level::error;
  return std::nullopt;
}

std::string_view to_string(Level level) noexcept {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warning:
      return "warning";
    case Level::error:
      return "error";
  }
  return "info";
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Logger::Logger(Level min_level, bool json, std::ostream* out)
    : min_level_(min_level), json_(json), out_(out ? out : &std::cerr) {}

Logger::Logger(Level min_level, bool json, LineSink sink)
    : min_level_(min_level), json_(json), out_(&std::cerr), sink_(std::move(sink)) {}

void Logger::log(Level level, std::string_view message,
                 const nlohmann::json& fields) const noexcept {
  if (!enabled(level)) return;
  try {
    std::string line;
    if (json_) {
      nlohmann::json j = nlohmann::json::object();
      j["timestamp"] = utc_timestamp();
      j["level"] = to_string(level);
      j["logger"] = "midas-api";
      j["message"] = message;
      if (fields.is_object()) {
        for (const auto& [k, v] : fields.items()) j[k] = v;
      }
      line = dump_json(j);
    } else {
      std::ostringstream os;
      os << utc_timestamp() << ' ' << to_string(level) << ' ' << message;
      if (fields.is_object()) {
        for (const auto& [k, v] : fields.items()) {
          os << ' ' << k << '=' << (v.is_string() ? v.get<std::string>() : dump_json(v));
        }
      }
      line = os.str();
    }
    line += '\n';
    const std::lock_guard lock(mutex_);
    if (sink_) {
      sink_(line);
    } else {
      *out_ << line << std::flush;
    }
  } catch (...) {
    // Logging must never take a request down.
  }
}

midas::LogSink Logger::midas_sink() const {
  return [this](midas::LogLevel level, std::string_view message) {
    Level l = Level::info;
    switch (level) {
      case midas::LogLevel::debug:
        l = Level::debug;
        break;
      case midas::LogLevel::info:
        l = Level::info;
        break;
      case midas::LogLevel::warning:
        l = Level::warning;
        break;
      case midas::LogLevel::error:
        l = Level::error;
        break;
    }
    log(l, message, {{"component", "midas"}});
  };
}

}  // namespace midas_api
