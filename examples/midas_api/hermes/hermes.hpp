// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "agents/agent.hpp"
#include "hermes/publisher.hpp"

/// What midas-api tells Hermes (scheme account status, credentials) and Hades (balances,
/// transactions). Every call goes through the Publisher: fire-and-forget, never on the request
/// path. Paths are appended to HERMES_URL / HADES_URL:
///
/// | call                | request                                                              |
/// |---------------------|----------------------------------------------------------------------|
/// | status              | Hermes POST /schemes/accounts/{id}/status
/// `{"status","journey","user_info"}` | | put_credentials     | Hermes PUT
/// /schemes/accounts/{id}/credentials `{identifier...}`      | | delete_account      | Hermes
/// DELETE /schemes/accounts/{id}                                 | | balance             | Hades
/// POST /balance `{balance without vouchers}`                     | | transactions        | Hades
/// POST /transactions `[transactions]`                            |
///
/// `user_info` is the request's public part: scheme_account_id, user_set, status, journey_type,
/// bink_user_id and channel when set. Unlike the original, decrypted credentials are never sent.
namespace midas_api {

/// Hermes scheme-account statuses used by midas-api (the original's SchemeAccountStatus).
namespace hermes_status {
inline constexpr int pending = 0;
inline constexpr int active = 1;
inline constexpr int wallet_only = 10;
}  // namespace hermes_status

/// Builds Hermes/Hades calls and hands them to a Publisher. Thread-safe.
class HermesClient {
 public:
  explicit HermesClient(Publisher& publisher) : publisher_(publisher) {}

  /// POST {HERMES}/schemes/accounts/{id}/status.
  void status(const UserInfo& user, int status,
              const std::optional<std::string>& journey = std::nullopt);
  /// PUT {HERMES}/schemes/accounts/{id}/credentials with the agent's identifiers.
  void put_credentials(const UserInfo& user, const nlohmann::json& identifier);
  /// DELETE {HERMES}/schemes/accounts/{id} (status 447, scheme requested deletion).
  void delete_account(const UserInfo& user);
  /// POST {HADES}/balance; `balance` is the response object ("vouchers" is removed).
  void balance(const UserInfo& user, nlohmann::json balance);
  /// POST {HADES}/transactions with the hashed list.
  void transactions(const UserInfo& user, const nlohmann::json& transactions);

  /// True when Hades calls are sent (so callers may skip computing them).
  [[nodiscard]] bool hades_enabled() const noexcept { return publisher_.enabled("hades"); }
  /// True when Hermes calls are sent.
  [[nodiscard]] bool hermes_enabled() const noexcept { return publisher_.enabled("hermes"); }

  /// The public part of `user` sent as user_info.
  [[nodiscard]] static nlohmann::json public_user_info(const UserInfo& user);

 private:
  Publisher& publisher_;
};

}  // namespace midas_api
