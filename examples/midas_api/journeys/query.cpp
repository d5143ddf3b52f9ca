// SPDX-License-Identifier: MIT
#include "journeys/query.hpp"

#include "agents/login_retry.hpp"
#include "crypto/credentials.hpp"
#include "crypto/labels.hpp"
#include "crypto/transactions.hpp"
#include "http/errors.hpp"

namespace midas_api {
namespace {

nlohmann::json voucher_json(const Voucher& v) {
  nlohmann::json j = {{"state", v.state}};
  auto opt = [&](const char* key, const std::optional<std::string>& s) {
    if (s) j[key] = *s;
  };
  opt("issue_date", v.issue_date);
  opt("redeem_date", v.redeem_date);
  opt("expiry_date", v.expiry_date);
  opt("code", v.code);
  opt("conversion_date", v.conversion_date);
  if (v.value) j["value"] = v.value->to_double();
  if (v.target_value) j["target_value"] = v.target_value->to_double();
  return j;
}

}  // namespace

nlohmann::json balance_json(const Balance& b, const UserInfo& user) {
  const double points = b.points.to_double();
  nlohmann::json j = {{"points", points},
                      {"value", b.value.to_double()},
                      {"value_label", crypto::cap_value_label(b.value_label)},
                      {"reward_tier", b.reward_tier},
                      {"scheme_account_id", user.scheme_account_id},
                      {"user_set", user.user_set},
                      {"points_label", crypto::points_label(points)}};
  if (b.balance && !b.balance->is_null()) j["balance"] = *b.balance;
  if (b.vouchers) {
    nlohmann::json vs = nlohmann::json::array();
    for (const auto& v : *b.vouchers) vs.push_back(voucher_json(v));
    j["vouchers"] = std::move(vs);
  }
  if (user.bink_user_id) j["bink_user_id"] = *user.bink_user_id;
  return j;
}

nlohmann::json transactions_json(const std::vector<Transaction>& txs, const UserInfo& user) {
  std::vector<crypto::TransactionText> texts;
  texts.reserve(txs.size());
  for (const auto& t : txs) {
    texts.push_back({.date = crypto::iso_datetime(t.date),
                     .description = t.description,
                     .points = t.points.text,
                     .location = t.location});
  }
  const auto hashes = crypto::hash_transactions(texts, user.scheme_account_id);
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < txs.size(); ++i) {
    const auto& t = txs[i];
    nlohmann::json j = {{"date", crypto::response_datetime(t.date)},
                        {"description", t.description},
                        {"points", t.points.to_double()},
                        {"hash", hashes.at(i)},
                        {"scheme_account_id", user.scheme_account_id},
                        {"user_set", user.user_set}};
    if (t.value) j["value"] = t.value->to_double();
    if (t.location) j["location"] = *t.location;
    out.push_back(std::move(j));
  }
  return out;
}

template <class Body>
nlohmann::json QueryJourneys::run(const QueryRequest& request, Body&& body) {
  const AgentInfo* info = deps_.agents.find(request.slug);
  if (!info) {
    deps_.hermes.status(request.user, hermes_status::wallet_only);
    throw no_such_agent();
  }
  auto credentials = crypto::decrypt_credentials(request.encrypted_credentials, deps_.aes_key);
  if (!credentials) throw bad_request("Cannot decrypt credentials: " + credentials.error().message);

  UserInfo user = request.user;
  user.credentials = std::move(*credentials);
  const UserInfo& published = request.user;  // what Hermes sees: no credentials
  try {
    std::unique_ptr<Agent> agent = info->factory(info->context, user);
    if (!agent) throw AgentError(errors::configuration, "No agent was created.");
    try {
      login_with_limit(*agent, user, deps_.retries, [this](std::string_view cls) {
        const data::ErrorInfo* e = deps_.errors.by_class(cls);
        return e && e->system_action_required;
      });
      deps_.metrics.login(info->slug, true);
    } catch (const AgentError& e) {
      deps_.metrics.login(info->slug, false, e.code());
      throw;
    } catch (...) {
      deps_.metrics.login(info->slug, false, errors::unknown.code);
      throw;
    }
    if (auto id = agent->identifier(); id.is_object() && !id.empty()) {
      deps_.hermes.put_credentials(published, id);
    }
    std::optional<nlohmann::json> result = body(*agent, user);
    if (!result) return nullptr;  // nothing to report: no status either
    deps_.hermes.status(published, hermes_status::active);
    return *result;
  } catch (const AgentError& e) {
    deps_.hermes.status(published, e.code());
    if (e.code() == errors::scheme_requested_delete.code) deps_.hermes.delete_account(published);
    throw;
  } catch (const RequestError&) {
    throw;
  } catch (...) {
    deps_.hermes.status(published, errors::unknown.code);
    throw;
  }
}

nlohmann::json QueryJourneys::balance(const QueryRequest& request) {
  return run(request,
             [this, &request](Agent& agent, const UserInfo& user) -> std::optional<nlohmann::json> {
               std::optional<Balance> b = agent.balance();
               if (!b) return std::nullopt;
               nlohmann::json out = balance_json(*b, user);
               deps_.hermes.balance(request.user, out);
               if (deps_.hermes.hades_enabled()) {
                 // The original published transactions in the background of a balance request; a
                 // failure here must not fail the balance.
                 try {
                   auto txs = transactions_json(agent.transactions(), user);
                   if (!txs.empty()) deps_.hermes.transactions(request.user, txs);
                 } catch (const std::exception& e) {
                   deps_.log.warning("transactions not published",
                                     {{"slug", request.slug},
                                      {"scheme_account_id", user.scheme_account_id},
                                      {"error", e.what()}});
                 }
               }
               return out;
             });
}

nlohmann::json QueryJourneys::transactions(const QueryRequest& request) {
  nlohmann::json result = nullptr;
  run(request,
      [this, &request, &result](Agent& agent,
                                const UserInfo& user) -> std::optional<nlohmann::json> {
        auto txs = transactions_json(agent.transactions(), user);
        if (!txs.empty()) {
          deps_.hermes.transactions(request.user, txs);
          result = std::move(txs);
        }
        return nlohmann::json(true);  // publish status 1 even for an empty list
      });
  return result;
}

nlohmann::json QueryJourneys::account_overview(const QueryRequest& request) {
  return run(
      request,
      [this, &request](Agent& agent, const UserInfo& user) -> std::optional<nlohmann::json> {
        std::optional<Balance> b = agent.balance();
        nlohmann::json balance = b ? balance_json(*b, user) : nlohmann::json(nullptr);
        nlohmann::json txs = transactions_json(agent.transactions(), user);
        if (b) deps_.hermes.balance(request.user, balance);
        if (!txs.empty()) deps_.hermes.transactions(request.user, txs);
        return nlohmann::json{{"balance", std::move(balance)}, {"transactions", std::move(txs)}};
      });
}

}  // namespace midas_api
