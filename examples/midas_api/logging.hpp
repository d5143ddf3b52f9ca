// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <iosfwd>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "midas/log.hpp"

/// midas-api's log: one JSON object a line (LOG_JSON=true) or one text line, to stderr.
namespace midas_api {

/// Severity, lowest first.
enum class Level { debug = 0, info = 1, warning = 2, error = 3 };

/// "debug", "info", "warning" ("warn"), "error" (any case); nullopt for anything else.
[[nodiscard]] std::optional<Level> parse_level(std::string_view text);
/// "debug", "info", "warning", "error".
[[nodiscard]] std::string_view to_string(Level level) noexcept;

/** Writes log lines. Thread-safe: one mutex serialises whole lines. JSON lines are
 *  `{"timestamp","level","logger","message", <fields>...}`; strings that are not UTF-8 are
 *  written with U+FFFD instead of failing. Never pass credentials, query strings or keys. */
class Logger {
 public:
  /// Receives whole lines (with their newline), one call at a time.
  using LineSink = std::function<void(std::string_view line)>;

  /// Lines below `min_level` are dropped; `out` must outlive the logger (default std::cerr).
  explicit Logger(Level min_level = Level::info, bool json = true, std::ostream* out = nullptr);
  /// Lines go to `sink` instead of a stream (tests).
  Logger(Level min_level, bool json, LineSink sink);

  /// True when a line of `level` would be written.
  [[nodiscard]] bool enabled(Level level) const noexcept { return level >= min_level_; }
  /// Writes one line with optional extra fields (a JSON object). Never throws.
  void log(Level level, std::string_view message,
           const nlohmann::json& fields = nlohmann::json::object()) const noexcept;

  /// Shorthands for log().
  void debug(std::string_view m,
             const nlohmann::json& f = nlohmann::json::object()) const noexcept {
    log(Level::debug, m, f);
  }
  void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) const noexcept {
    log(Level::info, m, f);
  }
  void warning(std::string_view m,
               const nlohmann::json& f = nlohmann::json::object()) const noexcept {
    log(Level::warning, m, f);
  }
  void error(std::string_view m,
             const nlohmann::json& f = nlohmann::json::object()) const noexcept {
    log(Level::error, m, f);
  }

  /// A sink for the midas library (backends, workers) writing through this logger.
  [[nodiscard]] midas::LogSink midas_sink() const;

 private:
  Level min_level_;
  bool json_;
  std::ostream* out_;
  LineSink sink_{};
  mutable std::mutex mutex_;
};

/// `j` serialised compactly; invalid UTF-8 in strings is replaced by U+FFFD (never throws on it).
[[nodiscard]] std::string dump_json(const nlohmann::json& j);

}  // namespace midas_api
