// SPDX-License-Identifier: MIT
#include "redis/replies.hpp"

#include <algorithm>

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
  t.type = std::string{field("type")};
  t.params = document(field("params"));
  auto status = parse_task_status(field("status"));
  if (status) {
    t.status = status.value();
  } else {
    bad = true;
  }
  t.attempt = small("attempt");
  t.max_attempts = small("max_attempts");
  t.priority = small("priority");
  t.run_at = time(parse_int(field("run_at")));
  if (auto key = f.get("unique_key")) t.unique_key = std::string{*key};
  t.created_at = time(parse_int(field("created_at")));
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
  const json history = document(f.get("history").value_or("[]"));
  if (!bad) {
    try {
      t.history = history.get<std::vector<AttemptRecord>>();
    } catch (const std::exception&) {
      bad = true;
    }
  }
  if (token != nullptr) *token = std::string{lease_token};
  if (bad) return errc::protocol_error;
  return t;
}

}  // namespace midas::detail
