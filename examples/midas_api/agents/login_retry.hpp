// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agents/agent.hpp"

/// The login retry limit (MIDAS_API.md "Login retry limit").
namespace midas_api {

/// How long a maxed-out key blocks logins.
inline constexpr std::chrono::seconds kRetryLimitTtl{900};

/** LoginRetryStore in process memory (the service on memory://, or until the Redis-backed store
 *  exists). Thread-safe. Expired keys are dropped when read. `now` is injectable for tests. */
class InProcessLoginRetryStore final : public LoginRetryStore {
 public:
  using Now = std::function<std::chrono::steady_clock::time_point()>;
  /// `now` defaults to std::chrono::steady_clock::now.
  explicit InProcessLoginRetryStore(Now now = {});

  [[nodiscard]] int count(const std::string& key) override;
  void increment(const std::string& key) override;
  void max_out(const std::string& key, int limit, std::chrono::seconds ttl) override;

 private:
  struct Entry {
    int count = 0;
    std::optional<std::chrono::steady_clock::time_point> expires{};
  };
  Now now_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

/// `retry-{class}-{scheme_account_id}` in lower case.
[[nodiscard]] std::string login_retry_key(std::string_view agent_class,
                                          std::int64_t scheme_account_id);

/** Logs `agent` in under the retry limit: at the limit (count >= retry_limit) the key is maxed
 *  out for 900 s (again at each blocked attempt, as the original's SETEX) and
 *  RetryLimitReachedError (429) is thrown without calling the merchant; a failed
 *  login increments the count (except, after a join, errors needing system action, as the
 *  original) and rethrows; anything else thrown also counts as a failed login and is rethrown
 *  (the HTTP layer answers it as 520 Unknown error). A success does not reset the count (as the
 * original). `system_action_required` tells which error classes need system action (errors.json).
 */
void login_with_limit(
    Agent& agent, const UserInfo& user, LoginRetryStore& store,
    const std::function<bool(std::string_view error_class)>& system_action_required = {});

}  // namespace midas_api
