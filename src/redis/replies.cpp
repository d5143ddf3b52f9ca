// SPDX-License-Identifier: MIT
#include "redis/replies.hpp"

#include <algorithm>
#include <array>

#include "detail/record_json.hpp"
#include "redis/errors.hpp"

namespace midas::detail {

using json = nlohmann::json;

std::string_view text(const redisReply& r) noexcept { return {r.str, r.len}; }

// The error an error reply stands for; success for any other reply.
result<void> check(const redisReply& r) {
  if (r.type == REDIS_REPLY_ERROR) return from_reply_error(text(r));
  return success();
}

result<std::int64_t> integer_reply(const redisReply& r) {
  MIDAS_TRYV(check(r));
  if (r.type != REDIS_REPLY_INTEGER) return errc::protocol_error;
  return static_cast<std::int64_t>(r.integer);
}

result<const redisReply*> array_reply(const redisReply& r) {
  MIDAS_TRYV(check(r));
  if (r.type != REDIS_REPLY_ARRAY) return errc::protocol_error;
  return &r;
}

// The string in a bulk or status reply; nullopt for nil or other types.
std::optional<std::string_view> string_of(const redisReply& r) noexcept {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) return text(r);
  return std::nullopt;
}

std::string pack_data(int priority, int max_attempts, std::int64_t created_at_us,
                      std::string_view type, std::string_view params) {
  std::string d = std::to_string(priority);
  d += data_separator;
  d += std::to_string(max_attempts);
  d += data_separator;
  d += std::to_string(created_at_us);
  d += data_separator;
  d += type;
  d += data_separator;
  d += params;
  return d;
}

namespace {

struct Unpacked {
  std::optional<int> priority;
  std::optional<int> max_attempts;
  std::optional<std::int64_t> created_at;
  std::string_view type;
  std::string_view params;
};

// The parts of a task's packed data; nullopt if it has fewer than five.
std::optional<Unpacked> unpack_data(std::string_view d) {
  std::array<std::string_view, 4> head;
  for (auto& part : head) {
    const auto end = d.find(data_separator);
    if (end == std::string_view::npos) return std::nullopt;
    part = d.substr(0, end);
    d.remove_prefix(end + 1);
  }
  return Unpacked{narrow_int(parse_int(head[0])), narrow_int(parse_int(head[1])),
                  parse_int(head[2]), head[3], d};
}

// Fills what packed data holds; false if any of it is malformed.
bool fill_from_data(Task& t, std::string_view d) {
  auto p = unpack_data(d);
  if (!p || !p->priority || !p->max_attempts || !p->created_at || !fits_time(*p->created_at)) {
    return false;
  }
  t.priority = *p->priority;
  t.max_attempts = *p->max_attempts;
  t.created_at = from_us(*p->created_at);
  t.type = std::string{p->type};
  t.params = json::parse(p->params, nullptr, false);
  return !t.params.is_discarded();
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

result<Task> parse_ready_member(std::string_view member, std::string_view queue) {
  constexpr std::size_t run_at_digits = 17;
  constexpr std::size_t seq_digits = 20;
  constexpr std::size_t data_at = run_at_digits + 1 + seq_digits + 1;
  if (member.size() < data_at || member[run_at_digits] != ':' || member[data_at - 1] != ':') {
    return errc::protocol_error;
  }
  const std::string_view run_at = member.substr(0, run_at_digits);
  std::string_view seq = member.substr(run_at_digits + 1, seq_digits);
  if (!all_digits(run_at) || !all_digits(seq)) return errc::protocol_error;
  seq.remove_prefix(std::min(seq.find_first_not_of('0'), seq.size() - 1));
  const auto run_at_us = parse_int(run_at);
  if (!run_at_us || !fits_time(*run_at_us)) return errc::protocol_error;
  Task t;
  if (!fill_from_data(t, member.substr(data_at))) return errc::protocol_error;
  t.queue = std::string{queue};
  t.id = t.queue + "/" + std::string{seq};
  t.status = TaskStatus::pending;
  t.attempt = 0;
  t.run_at = from_us(*run_at_us);
  t.updated_at = t.created_at;
  return t;
}

bool is_member_reply(const redisReply& r) noexcept {
  const redisReply* first = &r;
  if (r.type == REDIS_REPLY_ARRAY) {
    if (r.elements == 0) return false;
    first = r.element[0];
  }
  return first->type == REDIS_REPLY_STRING && first->len > 0 && first->str[0] >= '0' &&
         first->str[0] <= '9';
}

result<Task> parse_claimed_member(const redisReply& r, std::string_view queue) {
  if (r.type == REDIS_REPLY_STRING) return parse_ready_member(text(r), queue);
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 6) return errc::protocol_error;
  std::array<std::string_view, 6> part;
  for (std::size_t i = 0; i < part.size(); ++i) {
    auto v = string_of(*r.element[i]);
    if (!v) return errc::protocol_error;
    part[i] = *v;
  }
  MIDAS_TRY(t, parse_ready_member(part[0], queue));
  auto status = parse_task_status(part[1]);
  auto attempt = narrow_int(parse_int(part[2]));
  auto run_at = parse_int(part[3]);
  if (!status ||
      (status.value() != TaskStatus::pending && status.value() != TaskStatus::retrying) ||
      !attempt || !run_at || !fits_time(*run_at)) {
    return errc::protocol_error;
  }
  t.status = status.value();
  t.attempt = *attempt;
  t.run_at = from_us(*run_at);
  if (!part[4].empty() && !read_history(part[4], t.history)) return errc::protocol_error;
  if (!part[5].empty()) {
    t.checkpoint = json::parse(part[5], nullptr, false);
    if (t.checkpoint.is_discarded()) return errc::protocol_error;
  }
  return t;
}

// A task hash as a Task; `token` receives the lease token, if any.
result<Task> parse_task(const redisReply& r, std::string_view queue, std::string_view seq,
                        std::string* token) {
  MIDAS_TRY(f, Fields::from(r));
  if (f.empty()) return errc::task_not_found;
  bool bad = false;
  auto field = [&](std::string_view name) -> std::string_view {
    auto v = f.get(name);
    if (!v) bad = true;
    return v.value_or(std::string_view{});
  };
  auto small = [&](std::string_view name) -> int {
    auto v = narrow_int(parse_int(field(name)));
    if (!v) bad = true;
    return v.value_or(0);
  };
  auto time = [&](std::optional<std::int64_t> us) -> TimePoint {
    if (!us || !fits_time(*us)) {
      bad = true;
      return TimePoint{};
    }
    return from_us(*us);
  };
  auto maybe_time = [&](std::string_view name) -> std::optional<TimePoint> {
    auto v = f.get(name);
    if (!v) return std::nullopt;
    return time(parse_int(*v));
  };
  auto document = [&](std::string_view raw) -> json {
    json j = json::parse(raw, nullptr, false);
    if (j.is_discarded()) bad = true;
    return j;
  };

  // Where the hash was read wins: an id made from it is one `get` can find again.
  auto where_or_field = [&](std::string_view where, std::string_view name) -> std::string_view {
    if (!where.empty()) return where;
    return field(name);
  };

  Task t;
  t.queue = std::string{where_or_field(queue, "queue")};
  t.id = t.queue + "/" + std::string{where_or_field(seq, "seq")};
  if (auto d = f.get("d")) {
    if (!fill_from_data(t, *d)) bad = true;
  } else {
    t.type = std::string{field("type")};
    t.params = document(field("params"));
    t.max_attempts = small("max_attempts");
    t.priority = small("priority");
    t.created_at = time(parse_int(field("created_at")));
  }
  auto status = parse_task_status(field("status"));
  if (status) {
    t.status = status.value();
  } else {
    bad = true;
  }
  t.attempt = small("attempt");
  t.run_at = time(parse_int(field("run_at")));
  if (auto key = f.get("unique_key")) t.unique_key = std::string{*key};
  t.finished_at = maybe_time("finished_at");
  t.updated_at = std::max({t.created_at, maybe_time("updated_at").value_or(t.created_at),
                           t.finished_at.value_or(t.created_at)});
  // A task keeps its last lease after it settles (one write fewer per task); it means something
  // only while the task runs. The lease is `lease` = "<deadline> <token> <owner>", or, for a task
  // leased under the first layout, the fields token, lease_expires_at and lease_owner: while
  // `token` exists it is the lease (see scripts.hpp).
  const bool running = status && status.value() == TaskStatus::running;
  std::string_view lease_token;
  const auto legacy_token = f.get("token");
  if (running && legacy_token) {
    lease_token = *legacy_token;
    if (auto owner = f.get("lease_owner")) t.lease_owner = std::string{*owner};
    t.lease_expires_at = maybe_time("lease_expires_at");
  } else if (running) {
    const std::string_view lease = field("lease");
    const auto a = lease.find(' ');
    const auto b = a == std::string_view::npos ? a : lease.find(' ', a + 1);
    if (b == std::string_view::npos) {
      bad = true;
    } else {
      t.lease_expires_at = time(parse_int(lease.substr(0, a)));
      lease_token = lease.substr(a + 1, b - a - 1);
      t.lease_owner = std::string{lease.substr(b + 1)};
    }
  }
  if (auto cp = f.get("checkpoint")) t.checkpoint = document(*cp);
  if (!bad && !read_history(f.get("history").value_or("[]"), t.history)) bad = true;
  if (token != nullptr) *token = std::string{lease_token};
  if (bad) return errc::protocol_error;
  return t;
}

}  // namespace midas::detail
