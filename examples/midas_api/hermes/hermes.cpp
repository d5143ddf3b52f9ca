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

void HermesClient::dispatch(OutboundCall call) {
  if (!publisher_.enabled(call.target)) return;
  if (delivery_ == Delivery::queued) {
    publisher_.submit(std::move(call));
    return;
  }
  if (!publisher_.deliver(call)) {
    throw AgentError(errors::service_connection,
                     call.target + " did not take " + call.method + " " + call.path);
  }
}

void HermesClient::status(const UserInfo& user, int status,
                          const std::optional<std::string>& journey) {
  nlohmann::json body = {{"status", status}, {"user_info", public_user_info(user)}};
  body["journey"] = journey ? nlohmann::json(*journey) : nlohmann::json(nullptr);
  dispatch({.target = "hermes",
            .method = "POST",
            .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/status",
            .body = dump_json(body),
            .tid = user.tid});
}

void HermesClient::join_failed(const UserInfo& user, int status, std::string_view slug) {
  const nlohmann::json body = {{"status", status},
                               {"event_name", "join-failed-event"},
                               {"metadata", {{"scheme", slug}}},
                               {"user_info", public_user_info(user)}};
  dispatch({.target = "hermes",
            .method = "POST",
            .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/status",
            .body = dump_json(body),
            .tid = user.tid});
}

void HermesClient::consent(const UserInfo& user, std::int64_t consent_id, int status) {
  dispatch({.target = "hermes",
            .method = "PUT",
            .path = "/schemes/user_consent/" + std::to_string(consent_id),
            .body = dump_json(nlohmann::json{{"status", status}}),
            .tid = user.tid});
}

void HermesClient::delete_credentials(const UserInfo& user, bool keep_card_number) {
  const nlohmann::json body =
      keep_card_number ? nlohmann::json{{"keep_card_number", true}} : nlohmann::json{{"all", true}};
  dispatch({.target = "hermes",
            .method = "DELETE",
            .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/credentials",
            .body = dump_json(body),
            .tid = user.tid});
}

void HermesClient::put_credentials(const UserInfo& user, const nlohmann::json& identifier) {
  dispatch({.target = "hermes",
            .method = "PUT",
            .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id) + "/credentials",
            .body = dump_json(identifier),
            .tid = user.tid});
}

void HermesClient::delete_account(const UserInfo& user) {
  dispatch({.target = "hermes",
            .method = "DELETE",
            .path = "/schemes/accounts/" + std::to_string(user.scheme_account_id),
            .body = {},
            .tid = user.tid});
}

void HermesClient::balance(const UserInfo& user, nlohmann::json balance) {
  if (balance.is_object()) balance.erase("vouchers");
  dispatch({.target = "hades",
            .method = "POST",
            .path = "/balance",
            .body = dump_json(balance),
            .tid = user.tid});
}

void HermesClient::transactions(const UserInfo& user, const nlohmann::json& transactions) {
  dispatch({.target = "hades",
            .method = "POST",
            .path = "/transactions",
            .body = dump_json(transactions),
            .tid = user.tid});
}

}  // namespace midas_api
