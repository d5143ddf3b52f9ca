// SPDX-License-Identifier: MIT
#pragma once
/// Reading Redis replies: numbers, strings, arrays, and a task hash back into a Task. Separate
/// from the queue so the fuzz target `redis_reply` can feed it replies hiredis parsed from
/// arbitrary bytes.

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "detail/micros.hpp"
#include "midas/clock.hpp"
#include "midas/result.hpp"
#include "midas/task.hpp"

namespace midas::detail {

[[nodiscard]] std::string_view text(const redisReply& r) noexcept;
/// The error an error reply stands for; success for any other reply.
[[nodiscard]] result<void> check(const redisReply& r);
[[nodiscard]] result<std::int64_t> integer_reply(const redisReply& r);
[[nodiscard]] result<const redisReply*> array_reply(const redisReply& r);
/// The string in a bulk or status reply; nullopt for nil or other types.
[[nodiscard]] std::optional<std::string_view> string_of(const redisReply& r) noexcept;

/// Separates fields and values when a script returns a task hash as one string (see the claim
/// script in scripts.hpp): the ASCII unit separator.
inline constexpr char field_separator = '\x1f';

// The fields of a HGETALL reply: the array, or its elements joined by field_separator.
class Fields {
 public:
  static result<Fields> from(const redisReply& r) {
    if (r.type == REDIS_REPLY_STRING) return from_joined(text(r));
    if (r.type != REDIS_REPLY_ARRAY || r.elements % 2 != 0) return errc::protocol_error;
    Fields f;
    for (std::size_t i = 0; i + 1 < r.elements; i += 2) {
      auto k = string_of(*r.element[i]);
      auto v = string_of(*r.element[i + 1]);
      if (!k || !v) return errc::protocol_error;
      f.kv_.emplace_back(*k, *v);
    }
    return f;
  }
  static result<Fields> from_joined(std::string_view joined) {
    Fields f;
    std::size_t at = 0;
    for (;;) {
      const auto k_end = joined.find(field_separator, at);
      if (k_end == std::string_view::npos) return errc::protocol_error;  // a field without value
      const auto v_end = joined.find(field_separator, k_end + 1);
      const auto v_len =
          v_end == std::string_view::npos ? std::string_view::npos : v_end - k_end - 1;
      f.kv_.emplace_back(joined.substr(at, k_end - at), joined.substr(k_end + 1, v_len));
      if (v_end == std::string_view::npos) return f;
      at = v_end + 1;
    }
  }
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const {
    for (const auto& [k, v] : kv_) {
      if (k == name) return v;
    }
    return std::nullopt;
  }
  [[nodiscard]] bool empty() const { return kv_.empty(); }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> kv_;
};

/// Separates the parts of a task's packed data, the hash field `d`: "<priority>\x1e<max_attempts>
/// \x1e<created_at>\x1e<type>\x1e<params>". None of the parts can hold the byte: numbers, a task
/// type name and JSON text (whose control characters are escaped).
inline constexpr char data_separator = '\x1e';

/// A task's packed data (see data_separator), from its parts.
[[nodiscard]] std::string pack_data(int priority, int max_attempts, std::int64_t created_at_us,
                                    std::string_view type, std::string_view params);

/// A ready member that carries the task's data, "<run_at:17 digits>:<seq:20 digits>:<d>", as the
/// Task it stands for before its first lease: pending, attempt 0, no history (the claim script
/// returns such members as they are). Anything else is protocol_error.
[[nodiscard]] result<Task> parse_ready_member(std::string_view member, std::string_view queue);

/// Whether a claim reply element is one of the two forms parse_claimed_member reads (rather than
/// a task hash): a string or an array that starts with a digit, as a ready member does.
[[nodiscard]] bool is_member_reply(const redisReply& r) noexcept;

/// A claim reply element of a task whose ready member carries its data, as the Task before the
/// lease: the member alone (a task never attempted, see parse_ready_member), or {member, status,
/// attempt, run_at, history, checkpoint} with '' for a field the hash lacks (a retry). Anything
/// else is protocol_error.
[[nodiscard]] result<Task> parse_claimed_member(const redisReply& r, std::string_view queue);

/// A task hash (HGETALL, as an array or joined into one string) as a Task; `token` receives the
/// lease token, if any. An empty hash is task_not_found; a field missing or out of range is
/// protocol_error.
///
/// `queue` and `seq` are where the hash was read (its key), needed for hashes of the compact
/// layout, which leave out the fields `queue` and `seq`; where given they win over the hash's own
/// fields. An empty `queue` or `seq` means the hash must carry that field. Such a hash also leaves
/// out `updated_at` until the task first changes, and a settled task's `updated_at` is its
/// `finished_at`: the task's updated_at is the latest of created_at, updated_at and finished_at.
/// A hash that has `d` takes type, params, priority, max_attempts and created_at from it.
[[nodiscard]] result<Task> parse_task(const redisReply& r, std::string_view queue,
                                      std::string_view seq = {}, std::string* token = nullptr);

}  // namespace midas::detail
