// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "agents/agent.hpp"
#include "hermes/publisher.hpp"

/// What midas-api tells Hermes (scheme account status, credentials, consents) and Hades
/// (balances, transactions). Paths are appended to HERMES_URL / HADES_URL:
///
/// - status: Hermes POST /schemes/accounts/{id}/status `{"status","journey","user_info"}`
/// - join_failed: the same path,
/// `{"status","event_name":"join-failed-event","metadata","user_info"}`
/// - consent: Hermes PUT /schemes/user_consent/{consent id} `{"status"}`
/// - put_credentials: Hermes PUT /schemes/accounts/{id}/credentials `{identifier...}`
/// - delete_credentials: Hermes DELETE /schemes/accounts/{id}/credentials `{"all": true}` or
///   `{"keep_card_number": true}`
/// - delete_account: Hermes DELETE /schemes/accounts/{id}
/// - balance: Hades POST /balance `{balance without vouchers}`
/// - transactions: Hades POST /transactions `[transactions]`
///
/// `user_info` is the request's public part: scheme_account_id, user_set, status, journey_type,
/// bink_user_id and channel when set. Unlike the original, decrypted credentials are never sent.
namespace midas_api {

/// Hermes scheme-account statuses used by midas-api (the original's SchemeAccountStatus).
namespace hermes_status {
inline constexpr int pending = 0;
inline constexpr int active = 1;
inline constexpr int wallet_only = 10;
inline constexpr int join_async_in_progress = 442;
inline constexpr int account_already_exists = 445;
inline constexpr int enrol_failed = 901;
inline constexpr int registration_failed = 902;
inline constexpr int join_weak_password = 905;
}  // namespace hermes_status

/// Consent statuses (the original's ConsentStatus).
namespace consent_status {
inline constexpr int success = 1;
inline constexpr int failed = 2;
}  // namespace consent_status

/** Builds Hermes/Hades calls and hands them to a Publisher. Thread-safe.
 *
 *  `Delivery::queued` (the request path): fire and forget through the publisher's queue.
 *  `Delivery::now` (the join tasks): each call is sent on the calling thread and one that Hermes
 *  or Hades did not take throws AgentError 537 ServiceConnectionError, which the join task
 *  retries, so a task records a step as done only once its calls arrived. */
class HermesClient {
 public:
  enum class Delivery { queued, now };
  explicit HermesClient(Publisher& publisher, Delivery delivery = Delivery::queued)
      : publisher_(publisher), delivery_(delivery) {}

  /// POST {HERMES}/schemes/accounts/{id}/status.
  void status(const UserInfo& user, int status,
              const std::optional<std::string>& journey = std::nullopt);
  /// POST {HERMES}/schemes/accounts/{id}/status with `event_name` "join-failed-event".
  void join_failed(const UserInfo& user, int status, std::string_view slug);
  /// PUT {HERMES}/schemes/user_consent/{consent_id} `{"status": status}`.
  void consent(const UserInfo& user, std::int64_t consent_id, int status);
  /// DELETE {HERMES}/schemes/accounts/{id}/credentials.
  void delete_credentials(const UserInfo& user, bool keep_card_number);
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
  void dispatch(OutboundCall call);

  Publisher& publisher_;
  Delivery delivery_;
};

}  // namespace midas_api
