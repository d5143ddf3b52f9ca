// SPDX-License-Identifier: MIT
#pragma once

/// `iceland-bonus-card`: the HTTP agent for an Iceland-style merchant API (midas-mock-merchant in
/// local runs and tests), with the transport/status error mapping and the request-level retries
/// of MIDAS_API.md.
///
/// Merchant API (see examples/mock_merchant/README.md): `POST {merchant_url}/login` with
/// `{card_number, last_name, postcode, message_uid, record_uid, callback_url,
/// merchant_scheme_id1, merchant_scheme_id2}` answers `{balance, transactions: [{timestamp,
/// reference, value}], barcode, card_number, merchant_scheme_id2}` or `{error_codes: [{code,
/// description}]}`; `POST {merchant_url}/join` answers 2xx (accepted, or `error_codes`) and the
/// result arrives later, signed, at `/join/merchant/iceland-bonus-card` -> join_callback().
///
/// Settings come from the slug's MERCHANT_CONFIG entry (AgentContext::merchant and ::http):
/// merchant_url, callback_url, timeout_seconds, max_retries, backoff_factor_seconds, and
/// optionally `api_key` (sent as `Authorization: Token <key>`). Without an entry every merchant
/// call fails with 536 Configuration error.

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agents/agent.hpp"

namespace midas_api {

/// The slug this agent is registered under.
inline constexpr std::string_view kIcelandBonusCardSlug = "iceland-bonus-card";

// --- the merchant HTTP client
// ---------------------------------------------------------------------

/** A request that got no HTTP answer: what a client library throws. Agents do not let it escape:
 *  they throw the Midas error with `std::throw_with_nested`, so it stays reachable as the nested
 *  exception (`std::rethrow_if_nested`). */
class TransportError : public std::runtime_error {
 public:
  /// What went wrong on the wire.
  enum class Kind {
    connect,          ///< Refused, unreachable, or no connection within the timeout.
    timeout,          ///< Connected, but no answer within the timeout.
    connection_lost,  ///< The connection was closed or reset before a full answer.
    other,            ///< Anything else (TLS, write failure...).
  };
  TransportError(Kind kind, const std::string& message, int attempts)
      : std::runtime_error(message), kind_(kind), attempts_(attempts) {}
  /// The kind of failure of the last try.
  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// Requests sent, retries included.
  [[nodiscard]] int attempts() const noexcept { return attempts_; }

 private:
  Kind kind_;
  int attempts_;
};

/// The merchant kept answering 500/502/504 until the retries ran out (urllib3's RetryError).
class RetriesExhaustedError : public std::runtime_error {
 public:
  RetriesExhaustedError(int last_status, int attempts)
      : std::runtime_error("merchant answered " + std::to_string(last_status) + " to all " +
                           std::to_string(attempts) + " attempts"),
        last_status_(last_status),
        attempts_(attempts) {}
  /// Status of the last answer.
  [[nodiscard]] int last_status() const noexcept { return last_status_; }
  /// Requests sent.
  [[nodiscard]] int attempts() const noexcept { return attempts_; }

 private:
  int last_status_;
  int attempts_;
};

/// The merchant answered an error status that is not retried (or no longer).
class HttpStatusError : public std::runtime_error {
 public:
  explicit HttpStatusError(int status)
      : std::runtime_error("merchant answered HTTP " + std::to_string(status)), status_(status) {}
  /// The HTTP status (>= 400).
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

/// An HTTP answer of the merchant.
struct MerchantResponse {
  int status = 0;
  std::string body{};
  int attempts = 1;  ///< Requests it took, retries included.
};

/** POSTs JSON to a merchant with the request-level retries of MIDAS_API.md: up to
 *  `settings.max_retries` more tries on 500/502/504 and on transport failures, sleeping
 *  `backoff_factor x 2^n` before retry n (0.3 s, 0.6 s, 1.2 s by default). Each request opens a
 *  new connection. Thread-safe (no shared state between calls). */
class MerchantHttpClient {
 public:
  /// `base_url` is "http(s)://host[:port][/path]"; throws std::invalid_argument otherwise.
  MerchantHttpClient(std::string_view base_url, HttpSettings settings,
                     std::vector<std::pair<std::string, std::string>> headers = {});

  /** POSTs `body` to base path + `path`. Returns a 2xx/3xx answer; throws TransportError
   *  (no answer after the retries), RetriesExhaustedError (500/502/504 every time) or
   *  HttpStatusError (any other status >= 400). */
  [[nodiscard]] MerchantResponse post_json(std::string_view path, const std::string& body) const;

  /// Optional diagnostics sink (one line a request; never bodies).
  void set_log(std::function<void(std::string_view level, std::string_view message)> log) {
    log_ = std::move(log);
  }

 private:
  std::string scheme_host_port_{};
  std::string base_path_{};
  HttpSettings settings_{};
  std::vector<std::pair<std::string, std::string>> headers_{};
  std::function<void(std::string_view, std::string_view)> log_{};
};

// --- error mapping
// --------------------------------------------------------------------------------

/// The Midas error of a merchant `error_codes` code (VALIDATION -> 403, JOIN_ERROR -> 538, ...);
/// nullptr when the code is not in the agent's table (the caller answers 520).
[[nodiscard]] const ErrorKind* iceland_error_for_code(std::string_view code) noexcept;

/// The Midas error of an HTTP error status: 401 -> 403, 403 -> 531, 404 -> 530, 503/504 -> 535,
/// any other -> 530.
[[nodiscard]] const ErrorKind& merchant_error_for_status(int status) noexcept;

/** Runs `call` and turns what escapes it into the Midas error, with the original exception
 *  nested (std::throw_with_nested): TransportError -> 530, RetriesExhaustedError -> 429,
 *  HttpStatusError -> merchant_error_for_status. AgentError passes through unchanged. */
MerchantResponse call_merchant(const std::function<MerchantResponse()>& call);

// --- the agent
// ------------------------------------------------------------------------------------

/// Credential fields listed by GET /agents: card_number, last_name, postcode.
[[nodiscard]] std::vector<std::string> iceland_bonus_card_credential_fields();

/// Creates the agent for one request (AgentInfo::factory).
[[nodiscard]] std::unique_ptr<Agent> make_iceland_bonus_card_agent(const AgentContext& context,
                                                                   UserInfo user);

/** Registers `iceland-bonus-card` with `context` (its slug is set here). `context.merchant`
 *  may be nullptr (no MERCHANT_CONFIG entry): the agent then answers 536 to every merchant call.
 *  `context.http` carries the entry's timeout and retry settings. */
void register_iceland_bonus_card(AgentRegistry& registry, AgentContext context);

}  // namespace midas_api
