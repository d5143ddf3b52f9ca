// SPDX-License-Identifier: MIT
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "agents/agent.hpp"
#include "crypto/reference_data.hpp"
#include "hermes/hermes.hpp"
#include "logging.hpp"
#include "metrics.hpp"

/// The read journeys: balance, transactions and account overview (MIDAS_API.md "Endpoints").
namespace midas_api {

/// A parsed GET /{slug}/balance|transactions|account_overview request.
struct QueryRequest {
  std::string slug{};
  std::string encrypted_credentials{};  ///< Spaces already turned back into '+'.
  UserInfo user{};                      ///< Everything but the credentials, filled by the parser.
};

/// What the journeys use; all references outlive the journeys.
struct JourneyDeps {
  const AgentRegistry& agents;
  LoginRetryStore& retries;
  HermesClient& hermes;
  Metrics& metrics;
  const Logger& log;
  const data::ErrorTable& errors;
  std::string aes_key;
};

/** Runs the agent for one request and shapes its answers. Thread-safe (each call builds its own
 *  agent). Throws RequestError (unknown slug 404, undecryptable credentials 400), AgentError
 *  (the Midas error, after publishing its code to Hermes) or anything else (after publishing 520;
 *  the HTTP layer answers 520). Every Hermes/Hades call goes through the publisher. */
class QueryJourneys {
 public:
  explicit QueryJourneys(JourneyDeps deps) : deps_(std::move(deps)) {}

  /// The balance object, or null when the agent has none (then nothing is published).
  [[nodiscard]] nlohmann::json balance(const QueryRequest& request);
  /// The hashed transaction list, or null when it is empty (as the original).
  [[nodiscard]] nlohmann::json transactions(const QueryRequest& request);
  /// {"balance": ..., "transactions": [...]}.
  [[nodiscard]] nlohmann::json account_overview(const QueryRequest& request);

 private:
  template <class Body>
  nlohmann::json run(const QueryRequest& request, Body&& body);

  JourneyDeps deps_;
};

/// The balance response of `b` for `user` (points_label, the value label cap, optional keys).
[[nodiscard]] nlohmann::json balance_json(const Balance& b, const UserInfo& user);
/// The transactions response (hash, date format, scheme_account_id, user_set).
[[nodiscard]] nlohmann::json transactions_json(const std::vector<Transaction>& txs,
                                               const UserInfo& user);

}  // namespace midas_api
