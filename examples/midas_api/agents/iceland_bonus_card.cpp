// SPDX-License-Identifier: MIT
#include "agents/iceland_bonus_card.hpp"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <random>
#include <regex>
#include <thread>

#include "crypto/hashids.hpp"
#include "crypto/labels.hpp"
#include "crypto/transactions.hpp"

namespace midas_api {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

// --- small helpers ------------------------------------------------------------------------------

std::string uuid4() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<int> nibble(0, 15);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    int v = nibble(engine);
    if (i == 12) v = 4;            // version 4
    if (i == 16) v = 8 | (v & 3);  // RFC 4122 variant
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += kHex[v];
  }
  return s;
}

/// A merchant amount (JSON number or decimal string) as decimal text; nullopt when not one.
std::optional<std::string> amount_text(const json& j) {
  if (j.is_number_integer() || j.is_number_unsigned()) return j.dump();
  if (j.is_number_float()) {
    if (!std::isfinite(j.get<double>())) return std::nullopt;
    return j.dump();  // shortest text that reads back as the same double: 20.71, 12345678.9
  }
  if (j.is_string()) {
    static const std::regex decimal(R"(^-?[0-9]+(\.[0-9]+)?$)");
    const auto& s = j.get_ref<const std::string&>();
    if (s.size() < 40 && std::regex_match(s, decimal)) return s;
  }
  return std::nullopt;
}

/// The smallest user id of a user_set ("3,1,2" -> 1); nullopt when there is none.
std::optional<std::uint64_t> min_user_id(const std::string& user_set) {
  std::optional<std::uint64_t> best;
  std::size_t start = 0;
  while (start <= user_set.size()) {
    const std::size_t end = std::min(user_set.find(',', start), user_set.size());
    std::string part = user_set.substr(start, end - start);
    part.erase(std::remove_if(part.begin(), part.end(),
                              [](unsigned char c) { return std::isspace(c) != 0; }),
               part.end());
    if (!part.empty() && part.size() < 20 &&
        std::all_of(part.begin(), part.end(), [](unsigned char c) { return std::isdigit(c); })) {
      const std::uint64_t id = std::stoull(part);
      if (!best || id < *best) best = id;
    }
    start = end + 1;
  }
  return best;
}

void throw_for_error_codes(const json& body) {
  auto it = body.find("error_codes");
  if (it == body.end() || !it->is_array() || it->empty()) return;
  const json& first = it->front();
  std::string code;
  if (first.is_object() && first.contains("code") && first["code"].is_string()) {
    code = first["code"].get<std::string>();
  } else if (first.is_string()) {
    code = first.get<std::string>();
  }
  if (const ErrorKind* kind = iceland_error_for_code(code)) throw AgentError(*kind);
  throw AgentError(errors::unknown, "unmapped merchant error code \"" + code.substr(0, 64) + "\"");
}

json parse_answer(const MerchantResponse& response) {
  json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded()) {
    throw AgentError(errors::unknown, "the merchant's answer is not JSON");
  }
  if (body.is_null()) body = json::object();  // an empty answer
  if (!body.is_object()) {
    throw AgentError(errors::unknown, "the merchant's answer is not a JSON object");
  }
  return body;
}

// --- the agent
// ------------------------------------------------------------------------------------

class IcelandBonusCard final : public Agent {
 public:
  IcelandBonusCard(const AgentContext& context, UserInfo user)
      : context_(context),
        user_(std::move(user)),
        message_uid_(user_.message_uid.empty() ? uuid4() : user_.message_uid) {}

  void login() override {
    const json& c = user_.credentials;
    json payload = json::object();
    for (const char* key : {"card_number", "last_name", "postcode"}) {
      auto value = credential_text(c, key);
      if (!value)
        throw AgentError(errors::unknown, std::string("missing the credential '") + key + "'");
      payload[key] = *value;
    }
    add_ids(payload);
    if (auto id2 = credential_text(c, "merchant_identifier")) payload["merchant_scheme_id2"] = *id2;

    const json answer = post("/login", payload);
    throw_for_error_codes(answer);

    const auto points = answer.contains("balance") ? amount_text(answer["balance"]) : std::nullopt;
    if (!points) throw AgentError(errors::unknown, "the merchant's answer has no valid balance");
    points_ = *points;
    transactions_.clear();
    if (auto tx = answer.find("transactions"); tx != answer.end() && !tx->is_null()) {
      if (!tx->is_array()) throw AgentError(errors::unknown, "merchant transactions: not a list");
      for (const auto& t : *tx) transactions_.push_back(parse_transaction(t));
    }
    // Identifiers the merchant knows and the credentials lack (or differ): PUT to Hermes.
    identifier_ = json::object();
    const std::pair<const char*, const char*> ids[] = {
        {"barcode", "barcode"},
        {"card_number", "card_number"},
        {"merchant_scheme_id2", "merchant_identifier"}};
    for (const auto& [from, to] : ids) {
      auto v = answer.find(from);
      if (v == answer.end() || !v->is_string() || v->get_ref<const std::string&>().empty())
        continue;
      if (credential_text(c, to) != v->get<std::string>()) identifier_[to] = *v;
    }
    logged_in_ = true;
  }

  std::optional<Balance> balance() override {
    if (!logged_in_) login();
    const double value = std::stod(points_);
    return Balance{.points = Amount{points_},
                   .value = Amount{points_},
                   .value_label = crypto::value_label(value),
                   .reward_tier = 0,
                   .balance = std::nullopt,
                   .vouchers = std::nullopt};
  }

  std::vector<Transaction> transactions() override {
    if (!logged_in_) login();
    return transactions_;
  }

  JoinResult join() override {
    const json& c = user_.credentials;
    if (!c.is_object()) throw AgentError(errors::join, "credentials are not an object");
    for (const char* key : {"first_name", "last_name", "email", "postcode"}) {
      if (!credential_text(c, key)) {
        throw AgentError(errors::join, std::string("missing the credential '") + key + "'");
      }
    }
    json payload = json::object();
    for (const auto& [key, value] : c.items()) {
      if (key == "password" || key == "consents") continue;  // not the merchant's business
      payload[key] = value;
    }
    add_ids(payload);
    const json answer = post("/join", payload);
    throw_for_error_codes(answer);
    return JoinResult{.expecting_callback = true, .identifier = json::object()};
  }

  JoinResult join_callback(const json& data) override {
    if (!data.is_object()) throw AgentError(errors::unknown, "callback body is not an object");
    throw_for_error_codes(data);
    json identifier = json::object();
    const std::pair<const char*, const char*> ids[] = {
        {"barcode", "barcode"},
        {"card_number", "card_number"},
        {"merchant_scheme_id2", "merchant_identifier"}};
    for (const auto& [from, to] : ids) {
      auto v = data.find(from);
      if (v != data.end() && v->is_string() && !v->get_ref<const std::string&>().empty()) {
        identifier[to] = *v;
      }
    }
    if (!identifier.contains("card_number") && !identifier.contains("barcode")) {
      throw AgentError(errors::unknown, "callback has neither error_codes nor a card");
    }
    return JoinResult{.expecting_callback = false, .identifier = std::move(identifier)};
  }

  [[nodiscard]] json identifier() const override { return identifier_; }
  [[nodiscard]] std::string retry_key_class() const override { return "iceland"; }
  [[nodiscard]] std::optional<int> retry_limit() const override { return 5; }

 private:
  void add_ids(json& payload) const {
    payload["message_uid"] = message_uid_;
    payload["record_uid"] = crypto::record_uid(user_.scheme_account_id);
    if (context_.merchant != nullptr && !context_.merchant->callback_url.empty()) {
      payload["callback_url"] = context_.merchant->callback_url;
    }
    if (auto id = min_user_id(user_.user_set)) {
      payload["merchant_scheme_id1"] = crypto::record_uid(static_cast<std::int64_t>(*id));
    }
  }

  json post(std::string_view path, const json& payload) const {
    const MerchantConfig* merchant = context_.merchant;
    if (merchant == nullptr || merchant->merchant_url.empty()) {
      log("error", "iceland-bonus-card: no merchant configuration (MERCHANT_CONFIG)");
      throw AgentError(errors::configuration);
    }
    std::vector<std::pair<std::string, std::string>> headers;
    if (auto key = merchant->extra.find("api_key");
        key != merchant->extra.end() && key->is_string()) {
      headers.emplace_back("Authorization", "Token " + key->get<std::string>());
    }
    std::optional<MerchantHttpClient> client;
    try {
      client.emplace(merchant->merchant_url, context_.http, std::move(headers));
    } catch (const std::invalid_argument& e) {
      log("error", std::string("iceland-bonus-card: ") + e.what());
      throw AgentError(errors::configuration);
    }
    client->set_log(context_.log);
    const std::string body = payload.dump(-1, ' ', false, json::error_handler_t::replace);
    const MerchantResponse response = call_merchant([&] { return client->post_json(path, body); });
    return parse_answer(response);
  }

  static Transaction parse_transaction(const json& t) {
    if (!t.is_object()) throw AgentError(errors::unknown, "merchant transaction: not an object");
    const auto stamp = t.find("timestamp");
    const auto date = stamp != t.end() && stamp->is_string()
                          ? crypto::parse_iso_datetime(stamp->get<std::string>())
                          : std::nullopt;
    if (!date) throw AgentError(errors::unknown, "merchant transaction: bad timestamp");
    const auto value = t.contains("value") ? amount_text(t["value"]) : std::nullopt;
    if (!value) throw AgentError(errors::unknown, "merchant transaction: bad value");
    std::string description;
    if (auto r = t.find("reference"); r != t.end() && r->is_string())
      description = r->get<std::string>();
    return Transaction{.date = *date,
                       .description = std::move(description),
                       .points = Amount{*value},
                       .value = std::nullopt,
                       .location = std::nullopt};
  }

  void log(std::string_view level, std::string_view message) const {
    if (context_.log) context_.log(level, message);
  }

  const AgentContext& context_;
  UserInfo user_;
  std::string message_uid_;
  bool logged_in_ = false;
  std::string points_ = "0";
  std::vector<Transaction> transactions_{};
  json identifier_ = json::object();
};

}  // namespace

// --- MerchantHttpClient
// ---------------------------------------------------------------------------

MerchantHttpClient::MerchantHttpClient(std::string_view base_url, HttpSettings settings,
                                       std::vector<std::pair<std::string, std::string>> headers)
    : settings_(settings), headers_(std::move(headers)) {
  static const std::regex re(R"(^(https?://[^/?#\s]+)(/[^?#\s]*)?$)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(base_url.begin(), base_url.end(), m, re)) {
    throw std::invalid_argument("merchant_url is not an http(s) URL");
  }
  scheme_host_port_ = m[1].str();
  base_path_ = m[2].matched ? m[2].str() : std::string{};
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (settings_.max_retries < 0) settings_.max_retries = 0;
}

MerchantResponse MerchantHttpClient::post_json(std::string_view path,
                                               const std::string& body) const {
  const std::string target = base_path_ + std::string(path);
  const auto timeout = std::max(settings_.timeout, std::chrono::milliseconds{1});
  const auto seconds = static_cast<time_t>(timeout.count() / 1000);
  const auto micros = static_cast<time_t>((timeout.count() % 1000) * 1000);
  httplib::Headers headers{{"Accept", "application/json"}, {"User-Agent", "midas-api"}};
  for (const auto& [k, v] : headers_) headers.emplace(k, v);

  const int tries = settings_.max_retries + 1;
  for (int attempt = 1;; ++attempt) {
    httplib::Client client(scheme_host_port_);
    client.set_connection_timeout(seconds, micros);
    client.set_read_timeout(seconds, micros);
    client.set_write_timeout(seconds, micros);
    const auto started = SteadyClock::now();
    auto result = client.Post(target.c_str(), headers, body, "application/json");
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);

    std::optional<TransportError> failure;
    int retry_status = 0;
    if (!result) {
      const httplib::Error error = result.error();
      TransportError::Kind kind = TransportError::Kind::other;
      std::string what;
      switch (error) {
        case httplib::Error::Connection:
        case httplib::Error::ConnectionTimeout:
        case httplib::Error::BindIPAddress:
          kind = TransportError::Kind::connect;
          what = elapsed >= timeout ? "no connection within the timeout" : "connection failed";
          break;
        case httplib::Error::Read:
          // httplib reports a read timeout and a closed connection alike; the clock tells.
          if (elapsed + std::chrono::milliseconds{50} >= timeout) {
            kind = TransportError::Kind::timeout;
            what = "no answer within " + std::to_string(timeout.count()) + " ms";
          } else {
            kind = TransportError::Kind::connection_lost;
            what = "connection closed before the answer";
          }
          break;
        default:
          what = httplib::to_string(error);
          break;
      }
      failure.emplace(kind, "merchant " + scheme_host_port_ + target + ": " + what, attempt);
    } else if (result->status == 500 || result->status == 502 || result->status == 504) {
      retry_status = result->status;
    }

    if (log_) {
      log_(failure || retry_status != 0 ? "warning" : "debug",
           "merchant POST " + target + " attempt " + std::to_string(attempt) + "/" +
               std::to_string(tries) + ": " +
               (failure ? std::string(failure->what()) : "HTTP " + std::to_string(result->status)) +
               " in " + std::to_string(elapsed.count()) + " ms");
    }

    if (!failure && retry_status == 0) {
      if (result->status >= 400) throw HttpStatusError(result->status);
      return MerchantResponse{.status = result->status, .body = result->body, .attempts = attempt};
    }
    if (attempt >= tries) {
      if (failure) throw *failure;
      throw RetriesExhaustedError(retry_status, attempt);
    }
    // Retry n (0-based) waits backoff_factor x 2^n.
    const auto pause = settings_.backoff_factor * (std::int64_t{1} << std::min(attempt - 1, 20));
    std::this_thread::sleep_for(pause);
  }
}

// --- error mapping
// --------------------------------------------------------------------------------

const ErrorKind* iceland_error_for_code(std::string_view code) noexcept {
  struct Entry {
    std::string_view code;
    const ErrorKind* kind;
  };
  static constexpr Entry table[] = {
      {"VALIDATION", &errors::status_login_failed},
      {"CARD_NOT_REGISTERED", &errors::card_not_registered},
      {"CARD_NUMBER_ERROR", &errors::card_number},
      {"GENERAL_ERROR", &errors::general},
      {"JOIN_ERROR", &errors::join},
      {"JOIN_IN_PROGRESS", &errors::join_in_progress},
      {"LINK_LIMIT_EXCEEDED", &errors::link_limit_exceeded},
      {"NO_SUCH_RECORD", &errors::no_such_record},
      {"NOT_SENT", &errors::not_sent},
      {"PRE_REGISTERED_ERROR", &errors::pre_registered_card},
      {"UNKNOWN", &errors::unknown},
      {"ALREADY_PROCESSED", &errors::account_already_exists},
      {"ACCOUNT_ALREADY_EXISTS", &errors::account_already_exists},
  };
  for (const auto& e : table) {
    if (e.code == code) return e.kind;  // exact match (the original matched substrings: a quirk)
  }
  return nullptr;
}

const ErrorKind& merchant_error_for_status(int status) noexcept {
  switch (status) {
    case 401:
      return errors::status_login_failed;
    case 403:
      return errors::ip_blocked;
    case 404:
      return errors::end_site_down;
    case 503:
    case 504:
      return errors::not_sent;
    default:
      return errors::end_site_down;
  }
}

MerchantResponse call_merchant(const std::function<MerchantResponse()>& call) {
  try {
    return call();
  } catch (const AgentError&) {
    throw;
  } catch (const TransportError&) {
    std::throw_with_nested(AgentError(errors::end_site_down));
  } catch (const RetriesExhaustedError&) {
    std::throw_with_nested(AgentError(errors::retry_limit_reached));
  } catch (const HttpStatusError& e) {
    std::throw_with_nested(AgentError(merchant_error_for_status(e.status())));
  }
}

// --- registration
// ---------------------------------------------------------------------------------

std::vector<std::string> iceland_bonus_card_credential_fields() {
  return {"card_number", "last_name", "postcode"};
}

std::unique_ptr<Agent> make_iceland_bonus_card_agent(const AgentContext& context, UserInfo user) {
  return std::make_unique<IcelandBonusCard>(context, std::move(user));
}

void register_iceland_bonus_card(AgentRegistry& registry, AgentContext context) {
  context.slug = std::string(kIcelandBonusCardSlug);
  registry.add(AgentInfo{.slug = std::string(kIcelandBonusCardSlug),
                         .credential_fields = iceland_bonus_card_credential_fields(),
                         .factory = make_iceland_bonus_card_agent,
                         .context = std::move(context)});
}

}  // namespace midas_api
