// SPDX-License-Identifier: MIT
#include "tool_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <midas/error.hpp>

namespace midas::tools {
namespace {

std::string_view scheme_of(std::string_view url) {
  auto pos = url.find("://");
  return pos == std::string_view::npos ? std::string_view{} : url.substr(0, pos);
}

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return std::string{s};
}

// The authority of a URL: what lies between "://" and the next '/', '?' or '#'.
std::string_view authority_of(std::string_view url) {
  auto pos = url.find("://");
  if (pos == std::string_view::npos) return {};
  std::string_view rest = url.substr(pos + 3);
  return rest.substr(0, rest.find_first_of("/?#"));
}

// The reason a backend gave for a failed connect, from its log lines; empty if none is found.
std::string connect_reason(const std::vector<std::string>& logs) {
  for (const auto& line : logs) {
    // postgres: "postgres: cannot connect (<libpq message>); check the URL, ..."
    if (auto start = line.find("cannot connect ("); start != std::string::npos) {
      start += std::string_view{"cannot connect ("}.size();
      auto end = line.rfind(");");
      std::string inner = line.substr(
          start, end == std::string::npos || end < start ? std::string::npos : end - start);
      // libpq: 'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n...'
      if (auto f = inner.find("failed: "); f != std::string::npos) inner = inner.substr(f + 8);
      inner = inner.substr(0, inner.find('\n'));
      if (inner.rfind("FATAL:", 0) == 0) inner = inner.substr(6);
      inner = trim(inner);
      if (!inner.empty()) inner[0] = static_cast<char>(std::tolower(inner[0]));
      return inner;
    }
    // redis: "redis: cannot connect to 127.0.0.1:6379 (Connection refused); calls fail ..."
    if (auto start = line.find("cannot connect to "); start != std::string::npos) {
      auto open = line.find('(', start);
      auto close = line.find(");", open == std::string::npos ? start : open);
      if (open != std::string::npos && close != std::string::npos) {
        std::string inner = trim(line.substr(open + 1, close - open - 1));
        if (!inner.empty()) inner[0] = static_cast<char>(std::tolower(inner[0]));
        return inner;
      }
    }
  }
  return {};
}

}  // namespace

std::string backend_name(std::string_view url) {
  std::string scheme = lower(scheme_of(url));
  if (scheme == "postgresql" || scheme == "postgres") return "postgres";
  if (scheme == "redis") return "redis";
  if (scheme == "memory") return "memory";
  return scheme;
}

std::string endpoint_of(std::string_view url) {
  std::string_view auth = authority_of(url);
  if (auto at = auth.rfind('@'); at != std::string_view::npos) auth = auth.substr(at + 1);
  std::string host{auth};
  const std::string backend = backend_name(url);
  if (host.empty()) host = "localhost";
  bool has_port = false;
  if (!host.empty() && host.front() == '[') {
    has_port = host.find("]:") != std::string::npos;
  } else {
    has_port = host.find(':') != std::string::npos;
  }
  if (!has_port) {
    if (backend == "postgres") host += ":5432";
    if (backend == "redis") host += ":6379";
  }
  return host;
}

std::string redact_url(std::string_view url) {
  std::string out{url};
  auto pos = out.find("://");
  if (pos == std::string::npos) return out;
  const std::size_t start = pos + 3;
  const std::size_t end = std::min(out.find_first_of("/?#", start), out.size());
  const std::size_t at = out.rfind('@', end);
  if (at == std::string::npos || at < start) return out;
  const std::size_t colon = out.find(':', start);
  if (colon == std::string::npos || colon > at) return out;
  return out.substr(0, colon + 1) + "***" + out.substr(at);
}

LogSink LogCapture::sink() const {
  return [state = state_](LogLevel level, std::string_view message) {
    std::lock_guard lock{state->mutex};
    state->lines.emplace_back(message);
    if (state->echo && level != LogLevel::debug) {
      std::cerr << "midas " << to_string(level) << ": " << message << "\n";
    }
  };
}

std::vector<std::string> LogCapture::lines() const {
  std::lock_guard lock{state_->mutex};
  return state_->lines;
}

std::optional<ConnectFailure> connect_queue(std::string_view url, bool echo_logs, Connection& out) {
  out.logs = LogCapture{echo_logs};
  auto q = midas::connect(url, ConnectOptions{.clock = nullptr, .log = out.logs.sink()});
  if (!q) {
    return ConnectFailure{q.error(), explain_connect_error(url, q.error(), out.logs.lines())};
  }
  out.queue = std::move(q).value();
  return std::nullopt;
}

std::string explain_connect_error(std::string_view url, std::error_code ec,
                                  const std::vector<std::string>& logs) {
  const std::string backend = backend_name(url);
  const std::string shown = redact_url(url);
  if (ec == errc::invalid_url) {
    return "invalid backend URL '" + shown +
           "' — expected memory://, postgresql://user@host:5432/db or redis://host:6379/0; "
           "check --url (or MIDAS_URL)";
  }
  if (ec == errc::unsupported_scheme) {
    return "unsupported URL scheme '" + std::string{scheme_of(url)} + "' in '" + shown +
           "' — use memory://, postgresql:// (postgres://) or redis://; check --url";
  }
  if (ec == errc::backend_not_built) {
    const std::string option = backend == "redis" ? "MIDAS_WITH_REDIS" : "MIDAS_WITH_POSTGRES";
    return "this build of midas has no " + backend + " backend — rebuild midas with -D" + option +
           "=ON";
  }
  if (ec == errc::backend_unavailable || ec == errc::timeout) {
    std::string reason = connect_reason(logs);
    if (reason.empty()) reason = ec == errc::timeout ? "timed out" : "no connection";
    std::string hint = "is the server running? check --url";
    if (reason.find("password") != std::string::npos ||
        reason.find("authentication") != std::string::npos ||
        reason.find("AUTH") != std::string::npos || reason.find("NOAUTH") != std::string::npos) {
      hint = "check the user and password in --url";
    } else if (reason.find("does not exist") != std::string::npos) {
      hint = "create it, or fix the name in --url";
    }
    return "cannot reach " + backend + " at " + endpoint_of(url) + ": " + reason + " — " + hint;
  }
  std::string msg = "cannot open " + backend + " at " + endpoint_of(url) + ": " + ec.message();
  if (std::string reason = connect_reason(logs); !reason.empty()) msg += " (" + reason + ")";
  return msg + " — check --url";
}

std::string error_name(std::error_code ec) {
  if (ec.category() == error_category()) {
    switch (static_cast<errc>(ec.value())) {
      case errc::backend_unavailable:
        return "backend_unavailable";
      case errc::timeout:
        return "timeout";
      case errc::conflict:
        return "conflict";
      case errc::in_doubt:
        return "in_doubt";
      case errc::protocol_error:
        return "protocol_error";
      case errc::task_not_found:
        return "task_not_found";
      case errc::duplicate_task:
        return "duplicate_task";
      case errc::invalid_payload:
        return "invalid_payload";
      case errc::invalid_argument:
        return "invalid_argument";
      case errc::invalid_url:
        return "invalid_url";
      case errc::unsupported_scheme:
        return "unsupported_scheme";
      case errc::backend_not_built:
        return "backend_not_built";
      case errc::lease_lost:
        return "lease_lost";
      case errc::invalid_state:
        return "invalid_state";
      case errc::unknown_task_type:
        return "unknown_task_type";
      case errc::payload_too_large:
        return "payload_too_large";
      case errc::handler_decision:
        return "handler_decision";
      case errc::handler_exception:
        return "handler_exception";
    }
  }
  return std::string{ec.category().name()} + ":" + std::to_string(ec.value());
}

std::optional<Duration> parse_duration(std::string_view text, std::string& why) {
  if (text.empty()) {
    why = "empty duration; write it like 30s, 15m, 2h or 7d";
    return std::nullopt;
  }
  std::int64_t total_ms = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::int64_t value = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc{} || ptr == rest.data() || value < 0) {
      why = "'" + std::string{text} + "' is not a duration; write it like 30s, 15m, 2h or 7d";
      return std::nullopt;
    }
    rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()));
    std::size_t unit_len = 0;
    while (unit_len < rest.size() && std::isalpha(static_cast<unsigned char>(rest[unit_len])) != 0)
      ++unit_len;
    const std::string unit = lower(rest.substr(0, unit_len));
    rest.remove_prefix(unit_len);
    std::int64_t factor = 0;
    if (unit == "ms") {
      factor = 1;
    } else if (unit == "s") {
      factor = 1000;
    } else if (unit == "m") {
      factor = 60'000;
    } else if (unit == "h") {
      factor = 3'600'000;
    } else if (unit == "d") {
      factor = 86'400'000;
    } else if (unit.empty()) {
      why = "'" + std::string{text} + "' has no unit; write it like 30s, 15m, 2h or 7d";
      return std::nullopt;
    } else {
      why = "unknown unit '" + unit + "' in '" + std::string{text} + "'; use ms, s, m, h or d";
      return std::nullopt;
    }
    constexpr std::int64_t max_ms = std::int64_t{100} * 365 * 86'400'000;  // 100 years
    if (value > max_ms / factor || total_ms > max_ms - value * factor) {
      why = "'" + std::string{text} + "' is too long (100 years at most)";
      return std::nullopt;
    }
    total_ms += value * factor;
  }
  return Duration{total_ms};
}

std::string format_duration(Duration d) {
  const std::int64_t ms = d.count();
  std::array<char, 64> buf{};
  if (ms < 0) return "-" + format_duration(Duration{-ms});
  if (ms < 1000) {
    std::snprintf(buf.data(), buf.size(), "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf.data(), buf.size(), "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf.data(), buf.size(), "%lldm %02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else if (ms < 86'400'000) {
    std::snprintf(buf.data(), buf.size(), "%lldh %02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  } else {
    std::snprintf(buf.data(), buf.size(), "%lldd %02lldh", static_cast<long long>(ms / 86'400'000),
                  static_cast<long long>(ms / 3'600'000 % 24));
  }
  return buf.data();
}

Table::Table(std::vector<std::string> header)
    : header_{std::move(header)}, right_(header_.size(), false) {}

Table& Table::right(std::size_t index) {
  if (index < right_.size()) right_[index] = true;
  return *this;
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  auto line = [&](const std::vector<std::string>& row) {
    std::string text;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::size_t pad = width[i] - row[i].size();
      const bool last = i + 1 == row.size();
      if (right_[i]) text.append(pad, ' ');
      text += row[i];
      if (!right_[i] && !last) text.append(pad, ' ');
      if (!last) text += "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << "\n";
  };
  line(header_);
  for (const auto& row : rows_) line(row);
}

bool stderr_is_terminal() noexcept { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, std::optional<std::size_t> total)
    : label_{std::move(label)}, total_{total}, enabled_{stderr_is_terminal()} {}

Progress::~Progress() { finish(); }

void Progress::update(std::size_t done) {
  last_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && now < next_) return;
  next_ = now + std::chrono::milliseconds{100};
  shown_ = true;
  std::cerr << "\r" << label_ << ": " << done;
  if (total_) std::cerr << "/" << *total_;
  std::cerr << std::flush;
}

void Progress::finish() {
  if (!enabled_ || !shown_) return;
  std::cerr << "\r" << label_ << ": " << last_;
  if (total_) std::cerr << "/" << *total_;
  std::cerr << "\n" << std::flush;
  shown_ = false;
  enabled_ = false;
}

}  // namespace midas::tools
