// SPDX-License-Identifier: MIT
#include "midas/task.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "detail/record_json.hpp"

namespace midas {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<TaskStatus, std::string_view>, 6> status_names{{
    {TaskStatus::pending, "pending"},
    {TaskStatus::running, "running"},
    {TaskStatus::retrying, "retrying"},
    {TaskStatus::succeeded, "succeeded"},
    {TaskStatus::failed, "failed"},
    {TaskStatus::cancelled, "cancelled"},
}};

json time_or_null(const std::optional<TimePoint>& t) { return t ? json(format_time(*t)) : json(); }

TimePoint time_at(const json& j, const char* key) {
  auto parsed = parse_time(j.at(key).get<std::string>());
  if (!parsed)
    throw json::other_error::create(501, std::string{"midas: bad time in field "} + key, nullptr);
  return parsed.value();
}

std::optional<TimePoint> optional_time(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  auto parsed = parse_time(it->get<std::string>());
  if (!parsed)
    throw json::other_error::create(501, std::string{"midas: bad time in field "} + key, nullptr);
  return parsed.value();
}

template <class T>
std::optional<T> optional_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

// An integer field: missing or null gives `fallback`; a float, a string or a value out of Int's
// range throws json::exception (nlohmann's own get<int>() casts a float with undefined behaviour
// when it does not fit: found by fuzz/task_json_fuzzer.cpp).
template <class Int>
Int integer_at(const json& j, const char* key, Int fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  const auto fail = [&](const char* what) {
    throw json::other_error::create(501, std::string{"midas: "} + key + " " + what, &*it);
  };
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) fail("is out of range");
    return static_cast<Int>(v);
  }
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v < static_cast<std::int64_t>(std::numeric_limits<Int>::min()) ||
        v > static_cast<std::int64_t>(std::numeric_limits<Int>::max())) {
      fail("is out of range");
    }
    return static_cast<Int>(v);
  }
  fail("must be an integer");
  return fallback;  // not reached
}

// Reads digits [pos, pos+n) of `s` as a number; -1 if they are not all digits.
int digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return -1;
  int value = 0;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + pos + n, value);
  if (ec != std::errc{} || end != s.data() + pos + n) return -1;
  return value;
}

}  // namespace

std::string_view to_string(TaskStatus s) noexcept {
  for (const auto& [status, name] : status_names) {
    if (status == s) return name;
  }
  return "unknown";
}

result<TaskStatus> parse_task_status(std::string_view name) {
  for (const auto& [status, n] : status_names) {
    if (n == name) return status;
  }
  return errc::invalid_argument;
}

bool is_valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

result<void> validate(const TaskSpec& spec) {
  if (!is_valid_name(spec.type) || !is_valid_name(spec.queue)) return errc::invalid_argument;
  if (spec.max_attempts < 0 || spec.delay.count() < 0) return errc::invalid_argument;
  if (spec.unique_key && (spec.unique_key->empty() || spec.unique_key->size() > 512)) {
    return errc::invalid_argument;
  }
  if (spec.params.is_discarded()) return errc::invalid_payload;
  // dump() cannot throw on invalid UTF-8 with the replace handler; size is what backends store.
  if (spec.params.dump(-1, ' ', false, json::error_handler_t::replace).size() > max_params_bytes) {
    return errc::payload_too_large;
  }
  return success();
}

namespace {

// `value` as exactly `width` decimal digits (the low ones), zero-padded.
void put_digits(std::string& out, long long value, std::size_t width) {
  std::array<char, 8> buf{};
  for (std::size_t i = width; i > 0; --i) {
    buf[i - 1] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf.data(), width);
}

}  // namespace

std::string format_time(TimePoint t) {
  using namespace std::chrono;
  auto ms = time_point_cast<milliseconds>(t);
  auto day = floor<days>(ms);
  year_month_day ymd{day};
  hh_mm_ss hms{ms - day};
  const int year = static_cast<int>(ymd.year());  // 1677-2262: what a TimePoint holds
  std::string out;
  out.reserve(24);
  put_digits(out, year, 4);
  out += '-';
  put_digits(out, static_cast<unsigned>(ymd.month()), 2);
  out += '-';
  put_digits(out, static_cast<unsigned>(ymd.day()), 2);
  out += 'T';
  put_digits(out, hms.hours().count(), 2);
  out += ':';
  put_digits(out, hms.minutes().count(), 2);
  out += ':';
  put_digits(out, hms.seconds().count(), 2);
  out += '.';
  put_digits(out, hms.subseconds().count(), 3);
  out += 'Z';
  return out;
}

result<TimePoint> parse_time(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+00:00)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return errc::invalid_argument;
  }
  int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  int h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (y < 0 || mo < 1 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) {
    return errc::invalid_argument;
  }
  // A TimePoint counts nanoseconds in 64 bits: 1677-09-21 to 2262-04-11. Outside whole years of
  // that range the conversion would overflow (found by fuzz/task_json_fuzzer.cpp).
  if (y < 1678 || y > 2261) return errc::invalid_argument;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return errc::invalid_argument;
  std::size_t pos = 19;
  nanoseconds fraction{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    std::int64_t value = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 9) {
      value = value * 10 + (s[pos] - '0');
      ++pos;
    }
    std::size_t count = pos - start;
    if (count == 0) return errc::invalid_argument;
    for (std::size_t i = count; i < 9; ++i) value *= 10;
    fraction = nanoseconds{value};
  }
  std::string_view zone = s.substr(pos);
  if (zone != "Z" && zone != "+00:00" && zone != "+00") return errc::invalid_argument;
  auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + fraction;
  return time_point_cast<TimePoint::duration>(tp);
}

void to_json(json& j, TaskStatus s) { j = std::string{to_string(s)}; }

void from_json(const json& j, TaskStatus& s) {
  auto parsed = parse_task_status(j.get<std::string>());
  if (!parsed) throw json::other_error::create(501, "midas: unknown task status " + j.dump(), &j);
  s = parsed.value();
}

void to_json(json& j, const ErrorInfo& e) {
  j = json{{"type", e.type}, {"message", e.message}, {"code", e.code}};
  if (e.http_status) j["http_status"] = *e.http_status;
  if (!e.context.empty()) j["context"] = e.context;
}

void from_json(const json& j, ErrorInfo& e) {
  e.type = j.value("type", "");
  e.message = j.value("message", "");
  e.code = j.value("code", "");
  if (j.contains("http_status") && !j.at("http_status").is_null()) {
    e.http_status = integer_at<int>(j, "http_status", 0);
  } else {
    e.http_status.reset();
  }
  e.context.clear();
  if (auto it = j.find("context"); it != j.end() && it->is_array()) {
    for (const auto& m : *it) {
      if (m.is_string()) e.context.push_back(m.get<std::string>());
    }
  }
}

void to_json(json& j, const AttemptRecord& a) {
  j = json{{"attempt", a.attempt},
           {"started_at", format_time(a.started_at)},
           {"finished_at", format_time(a.finished_at)},
           {"worker_id", a.worker_id},
           {"decision", a.decision}};
  j["error"] = a.error ? json(*a.error) : json();
  j["next_run_at"] = time_or_null(a.next_run_at);
}

namespace detail {
namespace {

// `s` as a JSON string, as nlohmann's dump writes it: printable ASCII as it is, anything else
// (quotes, backslashes, control characters, UTF-8, invalid bytes) through the library.
void put_json_string(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += json(std::string{s}).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

void put_time_or_null(std::string& out, const std::optional<TimePoint>& t) {
  if (!t) {
    out += "null";
    return;
  }
  out += '"';
  out += format_time(*t);
  out += '"';
}

// The keys in nlohmann's order: code, context (when not empty), http_status (when set), message,
// type.
void put_error(std::string& out, const ErrorInfo& e) {
  out += "{\"code\":";
  put_json_string(out, e.code);
  if (!e.context.empty()) {
    out += ",\"context\":[";
    for (std::size_t i = 0; i < e.context.size(); ++i) {
      if (i > 0) out += ',';
      put_json_string(out, e.context[i]);
    }
    out += ']';
  }
  if (e.http_status) {
    out += ",\"http_status\":";
    out += std::to_string(*e.http_status);
  }
  out += ",\"message\":";
  put_json_string(out, e.message);
  out += ",\"type\":";
  put_json_string(out, e.type);
  out += '}';
}

// Reads the JSON a history is stored as when it is plain: no escapes and only printable ASCII in
// strings, integers of at most 9 digits, only the keys a record has. Whitespace between tokens is
// skipped (Postgres writes jsonb as `{"key": value, ...}`, in its own key order). Every reader
// returns false at anything else, and the caller hands the text to the JSON library instead.
class PlainJson {
 public:
  explicit PlainJson(std::string_view text) : s_{text} {}

  bool eat(char c) {
    skip_space();
    if (pos_ == s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  bool eat_null() {
    skip_space();
    if (s_.substr(pos_, 4) != "null") return false;
    pos_ += 4;
    return true;
  }

  bool at_end() {
    skip_space();
    return pos_ == s_.size();
  }

  bool string(std::string_view& out) {
    if (!eat('"')) return false;
    const std::size_t start = pos_;
    for (; pos_ < s_.size(); ++pos_) {
      const auto u = static_cast<unsigned char>(s_[pos_]);
      if (u == '"') {
        out = s_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      if (u < 0x20 || u >= 0x80 || u == '\\') return false;
    }
    return false;
  }

  bool string(std::string& out) {
    std::string_view v;
    if (!string(v)) return false;
    out.assign(v);
    return true;
  }

  bool integer(int& out) {
    skip_space();
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    const std::size_t n = pos_ - start;
    if (n == 0 || n > 9 || (n > 1 && s_[start] == '0')) return false;
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) return false;
    return std::from_chars(s_.data() + start, s_.data() + pos_, out).ec == std::errc{};
  }

  bool time(TimePoint& out) {
    std::string_view v;
    if (!string(v)) return false;
    auto parsed = parse_time(v);
    if (!parsed) return false;
    out = parsed.value();
    return true;
  }

  // `null` (out empty) or a value that read(value) reads.
  template <class T, class Read>
  bool nullable(std::optional<T>& out, Read read) {
    if (eat_null()) {
      out.reset();
      return true;
    }
    return read(out.emplace());
  }

  // `[]` or `["...", ...]` into `out`.
  bool strings(std::vector<std::string>& out) {
    if (!eat('[')) return false;
    if (eat(']')) return true;
    do {
      if (!string(out.emplace_back())) return false;
    } while (eat(','));
    return eat(']');
  }

  // `{}` or `{"key": value, ...}`, calling read(i) to read the value of keys[i]. The keys seen,
  // one bit each; nullopt at an unknown key, a key that comes twice, or a value read refuses.
  template <std::size_t N, class Read>
  std::optional<unsigned> object(const std::array<std::string_view, N>& keys, Read read) {
    unsigned seen = 0;
    if (!eat('{')) return std::nullopt;
    if (eat('}')) return seen;
    do {
      std::string_view key;
      if (!string(key) || !eat(':')) return std::nullopt;
      const auto it = std::find(keys.begin(), keys.end(), key);
      if (it == keys.end()) return std::nullopt;
      const auto i = static_cast<std::size_t>(it - keys.begin());
      const unsigned bit = 1u << i;
      if ((seen & bit) != 0 || !read(i)) return std::nullopt;
      seen |= bit;
    } while (eat(','));
    if (!eat('}')) return std::nullopt;
    return seen;
  }

 private:
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

bool read_plain_error(PlainJson& in, ErrorInfo& e) {
  static constexpr std::array<std::string_view, 5> keys{"type", "message", "code", "http_status",
                                                        "context"};
  const auto seen = in.object(keys, [&](std::size_t key) {
    switch (key) {
      case 0:
        return in.string(e.type);
      case 1:
        return in.string(e.message);
      case 2:
        return in.string(e.code);
      case 3:
        return in.nullable(e.http_status, [&](int& v) { return in.integer(v); });
      default:
        return in.strings(e.context);
    }
  });
  return seen.has_value();
}

bool read_plain_record(PlainJson& in, AttemptRecord& a) {
  static constexpr std::array<std::string_view, 7> keys{
      "attempt", "started_at", "finished_at", "worker_id", "decision", "error", "next_run_at"};
  constexpr unsigned required = 0b111;  // attempt, started_at, finished_at
  const auto seen = in.object(keys, [&](std::size_t key) {
    switch (key) {
      case 0:
        return in.integer(a.attempt);
      case 1:
        return in.time(a.started_at);
      case 2:
        return in.time(a.finished_at);
      case 3:
        return in.string(a.worker_id);
      case 4:
        return in.string(a.decision);
      case 5:
        return in.nullable(a.error, [&](ErrorInfo& e) { return read_plain_error(in, e); });
      default:
        return in.nullable(a.next_run_at, [&](TimePoint& t) { return in.time(t); });
    }
  });
  return seen && (*seen & required) == required;
}

}  // namespace

bool read_plain_history(std::string_view text, std::vector<AttemptRecord>& out) {
  PlainJson in{text};
  std::vector<AttemptRecord> records;
  if (!in.eat('[')) return false;
  if (!in.eat(']')) {
    do {
      if (!read_plain_record(in, records.emplace_back())) return false;
    } while (in.eat(','));
    if (!in.eat(']')) return false;
  }
  if (!in.at_end()) return false;
  out = std::move(records);
  return true;
}

bool read_history(std::string_view text, std::vector<AttemptRecord>& out) {
  if (read_plain_history(text, out)) return true;
  const json history = json::parse(text, nullptr, false);
  if (history.is_discarded()) return false;
  try {
    out = history.get<std::vector<AttemptRecord>>();
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

// The keys in nlohmann's order (a std::map): attempt, decision, error, finished_at, next_run_at,
// started_at, worker_id.
std::string dump_record(const AttemptRecord& a) {
  std::string out;
  out.reserve(192);
  out += "{\"attempt\":";
  out += std::to_string(a.attempt);
  out += ",\"decision\":";
  put_json_string(out, a.decision);
  out += ",\"error\":";
  if (a.error) {
    put_error(out, *a.error);
  } else {
    out += "null";
  }
  out += ",\"finished_at\":";
  put_time_or_null(out, a.finished_at);
  out += ",\"next_run_at\":";
  put_time_or_null(out, a.next_run_at);
  out += ",\"started_at\":";
  put_time_or_null(out, a.started_at);
  out += ",\"worker_id\":";
  put_json_string(out, a.worker_id);
  out += '}';
  return out;
}

}  // namespace detail

void from_json(const json& j, AttemptRecord& a) {
  (void)j.at("attempt");  // required
  a.attempt = integer_at<int>(j, "attempt", 0);
  a.started_at = time_at(j, "started_at");
  a.finished_at = time_at(j, "finished_at");
  a.worker_id = j.value("worker_id", "");
  a.decision = j.value("decision", "");
  a.error = optional_field<ErrorInfo>(j, "error");
  a.next_run_at = optional_time(j, "next_run_at");
}

void to_json(json& j, const Task& t) {
  j = json{{"id", t.id},
           {"type", t.type},
           {"queue", t.queue},
           {"params", t.params},
           {"status", t.status},
           {"attempt", t.attempt},
           {"max_attempts", t.max_attempts},
           {"priority", t.priority},
           {"run_at", format_time(t.run_at)},
           {"created_at", format_time(t.created_at)},
           {"updated_at", format_time(t.updated_at)},
           {"checkpoint", t.checkpoint},
           {"history", t.history}};
  j["unique_key"] = t.unique_key ? json(*t.unique_key) : json();
  j["finished_at"] = time_or_null(t.finished_at);
  j["lease_owner"] = t.lease_owner ? json(*t.lease_owner) : json();
  j["lease_expires_at"] = time_or_null(t.lease_expires_at);
}

void from_json(const json& j, Task& t) {
  t.id = j.at("id").get<std::string>();
  t.type = j.at("type").get<std::string>();
  t.queue = j.at("queue").get<std::string>();
  t.params = j.value("params", json::object());
  t.status = j.at("status").get<TaskStatus>();
  t.attempt = integer_at<int>(j, "attempt", 0);
  t.max_attempts = integer_at<int>(j, "max_attempts", default_max_attempts);
  t.priority = integer_at<int>(j, "priority", 0);
  t.run_at = time_at(j, "run_at");
  t.unique_key = optional_field<std::string>(j, "unique_key");
  t.created_at = time_at(j, "created_at");
  t.updated_at = time_at(j, "updated_at");
  t.finished_at = optional_time(j, "finished_at");
  t.lease_owner = optional_field<std::string>(j, "lease_owner");
  t.lease_expires_at = optional_time(j, "lease_expires_at");
  t.checkpoint = j.value("checkpoint", json());
  t.history = j.value("history", std::vector<AttemptRecord>{});
}

void to_json(json& j, const TaskSpec& s) {
  j = json{
      {"type", s.type},         {"params", s.params},          {"queue", s.queue},
      {"priority", s.priority}, {"delay_ms", s.delay.count()}, {"max_attempts", s.max_attempts}};
  j["run_at"] = time_or_null(s.run_at);
  j["unique_key"] = s.unique_key ? json(*s.unique_key) : json();
}

void from_json(const json& j, TaskSpec& s) {
  s.type = j.at("type").get<std::string>();
  s.params = j.value("params", json::object());
  s.queue = j.value("queue", std::string{"default"});
  s.priority = integer_at<int>(j, "priority", 0);
  s.run_at = optional_time(j, "run_at");
  s.delay = Duration{integer_at<std::int64_t>(j, "delay_ms", 0)};
  s.unique_key = optional_field<std::string>(j, "unique_key");
  s.max_attempts = integer_at<int>(j, "max_attempts", 0);
}

}  // namespace midas
