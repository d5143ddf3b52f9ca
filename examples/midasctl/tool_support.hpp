// SPDX-License-Identifier: MIT
#pragma once
/// What midasctl and midas-bench share: error messages that name the problem and the fix,
/// durations on the command line, aligned tables, and the JSON names of error codes.

#include <iosfwd>
#include <memory>
#include <midas/log.hpp>
#include <midas/queue.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace midas::tools {

/// Exit statuses of both programs.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;  ///< The operation failed (backend, task state, ...).
inline constexpr int exit_usage = 2;    ///< The command line is wrong.

/// "memory", "postgres", "redis", or the scheme as written when it is none of those.
[[nodiscard]] std::string backend_name(std::string_view url);

/// "host:port" of a server URL (default ports filled in), without credentials.
[[nodiscard]] std::string endpoint_of(std::string_view url);

/// The URL with its password replaced by "***", safe to print.
[[nodiscard]] std::string redact_url(std::string_view url);

/// A LogSink that keeps what the library says (it has the details of a failed connect), and
/// optionally echoes it to stderr. Thread-safe.
class LogCapture {
 public:
  explicit LogCapture(bool echo = false) : state_{std::make_shared<State>()} {
    state_->echo = echo;
  }
  /// The sink to hand to midas::connect.
  [[nodiscard]] LogSink sink() const;
  /// Everything logged so far, one message per entry.
  [[nodiscard]] std::vector<std::string> lines() const;

 private:
  struct State {
    mutable std::mutex mutex;
    std::vector<std::string> lines;
    bool echo = false;
  };
  std::shared_ptr<State> state_;
};

/// Connects to `url` and, on failure, explains in one sentence what went wrong and what to do
/// ("cannot reach postgres at 127.0.0.1:5432: connection refused — is the server running? check
/// --url"). `echo_logs` also prints what the backend logs.
struct Connection {
  std::unique_ptr<Queue> queue;
  LogCapture logs;
};
struct ConnectFailure {
  std::error_code code;
  std::string message;
};
[[nodiscard]] std::optional<ConnectFailure> connect_queue(std::string_view url, bool echo_logs,
                                                          Connection& out);

/// The sentence for a failed connect, from the error and what the backend logged.
[[nodiscard]] std::string explain_connect_error(std::string_view url, std::error_code ec,
                                                const std::vector<std::string>& logs);

/// The name of an error code in JSON output: "task_not_found", "backend_unavailable", ... for
/// midas errors, "category:value" for others.
[[nodiscard]] std::string error_name(std::error_code ec);

/// Parses "30s", "15m", "2h", "7d", "500ms", or a sum of them ("1h30m"); a bare number is
/// rejected (the unit would be a guess). On failure returns nullopt and sets `why`.
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text, std::string& why);

/// "850ms", "12.3s", "4m 05s", "2h 03m", "3d 04h": short and readable.
[[nodiscard]] std::string format_duration(Duration d);

/// Rows of text printed with aligned columns; numeric columns are right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  /// Right-aligns column `index` (counts, rates).
  Table& right(std::size_t index);
  void add(std::vector<std::string> row);
  [[nodiscard]] bool empty() const noexcept { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

/// True when stderr is a terminal (progress lines are shown only then).
[[nodiscard]] bool stderr_is_terminal() noexcept;

/// A "label: done/total" line on stderr, rewritten in place, only on a terminal.
class Progress {
 public:
  Progress(std::string label, std::optional<std::size_t> total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  /// Shows `done` (at most about ten times a second).
  void update(std::size_t done);
  /// Ends the line (also done by the destructor).
  void finish();

 private:
  std::string label_;
  std::optional<std::size_t> total_;
  bool enabled_;
  bool shown_ = false;
  std::size_t last_ = 0;
  std::chrono::steady_clock::time_point next_{};
};

}  // namespace midas::tools
