// SPDX-License-Identifier: MIT
#include "hermes/hermes.hpp"

#include "logging.hpp"

namespace midas_api {

nlohmann::json HermesClient::public_user_info(const UserInfo& user) {
  nlohmann::json j = {{"scheme_account_id", user.scheme_account_id},
                      {"user_set", user.user_set},
                      {"journey_type", static_cast<int>(user.journey_type)}};
  j["status"] = user.status ? nlohmann::json(*user.status) : nlohmann::json(nullptr);
  if (user.bink_user_id) j["bink_user_id"] = *user.bink_user_id;
  if (!user.channel.empty()) j["channel"] = user.channel;
  return j;
}

void HermesClient::status(const UserInfo& user, int status,
                          const std::optional<std::string>& journey) {
  if (!publisher_.enabled("hermes")) return;
  nlohmann::json body = {{"status", status}, {"user_info", public_user_info(user)}};
  body["journey"] = journey ? nlohmann::json(*journey) : nlohmann::json(nullptr);
  publisher_.submit(
      {.target = "hermes",
       .method = "POST",
       .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/status",
       .body = dump_json(body),
       .tid = user.tid});
}

void HermesClient::put_credentials(const UserInfo& user, const nlohmann::json& identifier) {
  if (!publisher_.enabled("hermes")) return;
  publisher_.submit(
      {.target = "hermes",
       .method = "PUT",
       .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/credentials",
       .body = dump_json(identifier),
       .tid = user.tid});
}

void HermesClient::delete_account(const UserInfo& user) {
  if (!publisher_.enabled("hermes")) return;
  publisher_.submit({.target = "hermes",
                     .method = "DELETE",
                     .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id),
                     .body = {},
                     .tid = user.tid});
}

void HermesClient::balance(const UserInfo& user, nlohmann::json balance) {
  if (!publisher_.enabled("hades")) return;
  if (balance.is_object()) balance.erase("vouchers");
  publisher_.submit({.target = "hades",
                     .method = "POST",
                     .path = "/balance",
                     .body = dump_json(balance),
                     .tid = user.tid});
}

void HermesClient::transactions(const UserInfo& user, const nlohmann::json& transactions) {
  if (!publisher_.enabled("hades")) return;
  publisher_.submit({.target = "hades",
                     .method = "POST",
                     .path = "/transactions",
                     .body = dump_json(transactions),
                     .tid = user.tid});
}

}  // namespace midas_api
