// SPDX-License-Identifier: MIT
// The iceland-bonus-card agent in process against a real midas-mock-merchant: login, balance,
// transactions, error codes, the transport/status error mapping with nested causes, the
// request-level retries and their backoff, and the asynchronous join with its callback.

#include <doctest/doctest.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <typeinfo>

#include "agents/iceland_bonus_card.hpp"
#include "crypto/hashids.hpp"
#include "crypto/transactions.hpp"
#include "e2e_support.hpp"

using e2e::json;
using midas_api::AgentContext;
using midas_api::AgentError;
using midas_api::HttpSettings;
using midas_api::MerchantConfig;
using midas_api::UserInfo;

namespace {

/// An agent context pointing at a running mock merchant, with fast retries.
struct Fixture {
  std::unique_ptr<e2e::Process> merchant = e2e::start_mock_merchant({"--callback-delay-ms", "50"});
  e2e::Http http{merchant->url()};
  MerchantConfig config{.merchant_url = merchant->url() + "/merchant",
                        .security_type = "rsa",
                        .public_key_pem = "",
                        .callback_url = merchant->url() + "/hermes/join-callback",
                        .extra = json::object()};
  AgentContext context{.slug = "iceland-bonus-card",
                       .merchant = &config,
                       .http = HttpSettings{.timeout = std::chrono::milliseconds{400},
                                            .max_retries = 3,
                                            .backoff_factor = std::chrono::milliseconds{20}},
                       .log = {}};

  std::unique_ptr<midas_api::Agent> agent(json credentials, std::int64_t scheme_account_id = 42,
                                          std::string user_set = "7,3") {
    UserInfo user;
    user.credentials = std::move(credentials);
    user.scheme_account_id = scheme_account_id;
    user.user_set = std::move(user_set);
    return midas_api::make_iceland_bonus_card_agent(context, std::move(user));
  }
  json login_calls() { return http.get("/_calls?path_prefix=/merchant/login").json_body; }
  void fault(const json& f) { REQUIRE(http.post("/_faults", f).status == 201); }
};

json creds(const std::string& card, const std::string& last_name, const std::string& postcode) {
  return json{{"card_number", card}, {"last_name", last_name}, {"postcode", postcode}};
}

/// What login() threw: the AgentError and, if nested, the exception it wraps.
struct Thrown {
  int code = 0;
  std::string message{};
  std::string nested_type{};  ///< "transport", "retries_exhausted", "http_status" or "".
  std::optional<midas_api::TransportError::Kind> transport_kind{};
  int attempts = 0;
  int http_status = 0;
};

Thrown capture(const std::function<void()>& f) {
  Thrown t;
  try {
    f();
  } catch (const AgentError& e) {
    t.code = e.code();
    t.message = e.message();
    try {
      std::rethrow_if_nested(e);
    } catch (const midas_api::TransportError& n) {
      t.nested_type = "transport";
      t.transport_kind = n.kind();
      t.attempts = n.attempts();
    } catch (const midas_api::RetriesExhaustedError& n) {
      t.nested_type = "retries_exhausted";
      t.attempts = n.attempts();
      t.http_status = n.last_status();
    } catch (const midas_api::HttpStatusError& n) {
      t.nested_type = "http_status";
      t.http_status = n.status();
    } catch (...) {
      t.nested_type = "other";
    }
  }
  return t;
}

}  // namespace

TEST_CASE("a good login gives the merchant's balance, transactions and new identifiers") {
  Fixture f;
  auto agent = f.agent(creds("6332040066666666666", "Six", "RG6 6AA"));
  agent->login();
  const auto balance = agent->balance();
  REQUIRE(balance);
  CHECK(balance->points.text == "1480");
  CHECK(balance->value.text == "1480");
  CHECK(balance->value_label == "£1480.00");
  CHECK(balance->reward_tier == 0);
  CHECK_FALSE(balance->balance);
  CHECK_FALSE(balance->vouchers);

  const auto txs = agent->transactions();
  REQUIRE(txs.size() == 6);
  CHECK(midas_api::crypto::iso_datetime(txs[0].date) == "2018-07-01T14:24:15+00:00");
  CHECK(txs[0].description == "Test transaction: 1 item");
  CHECK(txs[0].points.text == "20.71");
  CHECK(txs[1].points.text == "-100.01");
  CHECK(txs[5].points.text == "1100");
  CHECK_FALSE(txs[0].location);

  // The credentials had the card; the barcode and merchant id are new: PUT to Hermes.
  CHECK(agent->identifier() ==
        json{{"barcode", "63320400666666666660"}, {"merchant_identifier", "MS2-666666"}});
  CHECK(agent->retry_key_class() == "iceland");
  CHECK(agent->retry_limit() == 5);

  // What the merchant received: the credentials plus the ids of the original Iceland payload.
  const auto calls = f.login_calls();
  REQUIRE(calls.size() == 1);  // balance() and transactions() reuse the login
  const json& sent = calls[0]["body"];
  CHECK(sent["card_number"] == "6332040066666666666");
  CHECK(sent["last_name"] == "Six");
  CHECK(sent["postcode"] == "RG6 6AA");
  CHECK(sent["record_uid"] == midas_api::crypto::record_uid(42));
  CHECK(sent["merchant_scheme_id1"] == midas_api::crypto::record_uid(3));
  CHECK(sent["callback_url"] == f.config.callback_url);
  CHECK(sent["message_uid"].get<std::string>().size() == 36);
  CHECK(calls[0]["headers"]["content-type"] == "application/json");
  CHECK_FALSE(calls[0]["headers"].contains("authorization"));
}

TEST_CASE("balance() logs in by itself and amounts keep the merchant's decimals") {
  Fixture f;
  auto one = f.agent(creds("6332040011111111111", "one", "rg1 1aa"));
  const auto b = one->balance();
  REQUIRE(b);
  CHECK(b->points.text == "20.1");
  CHECK(b->value_label == "£20.10");
  auto eight = f.agent(creds("6332040050607088888", "eight", "mp8 8bb"));
  CHECK(eight->balance()->points.text == "12345678.9");
  CHECK(eight->balance()->value_label == "Reward");  // "£12345678.90" is 12 characters
  auto zero = f.agent(creds("6332040000000000000", "zero", "rg0 0aa"));
  CHECK(zero->transactions().empty());
}

TEST_CASE("an api_key in the merchant config is sent as Authorization: Token") {
  auto merchant = e2e::start_mock_merchant({"--api-key", "k-123"});
  MerchantConfig config{.merchant_url = merchant->url() + "/merchant/",
                        .security_type = "open_auth",
                        .public_key_pem = "",
                        .callback_url = "",
                        .extra = json{{"api_key", "k-123"}}};
  AgentContext context{.slug = "iceland-bonus-card", .merchant = &config, .http = {}, .log = {}};
  UserInfo user;
  user.credentials = creds("6332040011111111111", "one", "rg1 1aa");
  user.scheme_account_id = 1;
  auto agent = midas_api::make_iceland_bonus_card_agent(context, user);
  CHECK_NOTHROW(agent->login());
  config.extra = json::object();
  auto refused = midas_api::make_iceland_bonus_card_agent(context, user);
  CHECK(capture([&] { refused->login(); }).code == 403);  // merchant 401 -> 403
}

TEST_CASE("merchant error codes map through the agent's table, unknown codes are 520") {
  Fixture f;
  struct Case {
    json credentials;
    int code;
  };
  const Case cases[] = {
      {creds("6332040066666666666", "seven", "rg6 6aa"), 403},    // VALIDATION
      {creds("6332049999999999999", "six", "rg6 6aa"), 438},      // CARD_NOT_REGISTERED
      {creds("63320400x", "six", "rg6 6aa"), 436},                // CARD_NUMBER_ERROR
      {creds("6332040031231231234", "six", "rg6 6aa"), 406},      // PRE_REGISTERED_ERROR
      {creds("6332040000300000003", "limited", "rg3 3aa"), 437},  // LINK_LIMIT_EXCEEDED
      {creds("6332040000400000004", "oddity", "rg4 4aa"), 520},   // unmapped
  };
  for (const auto& c : cases) {
    CAPTURE(c.credentials.dump());
    const auto t = capture([&] { f.agent(c.credentials)->login(); });
    CHECK(t.code == c.code);
    CHECK(t.nested_type.empty());
  }
  const auto unmapped = capture([&] { f.agent(cases[5].credentials)->login(); });
  CHECK(unmapped.message.find("SOMETHING_THE_AGENT_DOES_NOT_KNOW") != std::string::npos);
  CHECK(midas_api::iceland_error_for_code("JOIN_ERROR")->code == 538);
  CHECK(midas_api::iceland_error_for_code("ALREADY_PROCESSED")->code == 445);
  CHECK(midas_api::iceland_error_for_code("ACCOUNT_ALREADY_EXISTS")->code == 445);
  CHECK(midas_api::iceland_error_for_code("NOT_SENT")->code == 535);
  CHECK(midas_api::iceland_error_for_code("VALIDATION_X") == nullptr);  // exact match only
}

TEST_CASE("missing credentials fail before any merchant call") {
  Fixture f;
  const auto t = capture([&] { f.agent(json{{"card_number", "6332040066666666666"}})->login(); });
  CHECK(t.code == 520);
  CHECK(t.message == "missing the credential 'last_name'");
  CHECK(f.login_calls().empty());
}

TEST_CASE("without a merchant configuration every merchant call is 536") {
  Fixture f;
  f.context.merchant = nullptr;
  CHECK(capture([&] { f.agent(creds("6332040066666666666", "six", "rg6 6aa"))->login(); }).code ==
        536);
  f.context.merchant = &f.config;
  f.config.merchant_url = "ftp://nowhere";
  CHECK(capture([&] { f.agent(creds("6332040066666666666", "six", "rg6 6aa"))->login(); }).code ==
        536);
  f.config.merchant_url.clear();
  CHECK(capture([&] { f.agent(json::object())->join(); }).code == 538);  // checked before config
  CHECK(f.login_calls().empty());
}

TEST_CASE("HTTP error statuses map to Midas errors, the status kept as the nested cause") {
  Fixture f;
  const auto good = creds("6332040066666666666", "six", "rg6 6aa");
  struct Case {
    int status;
    int code;
  };
  for (const Case c : {Case{401, 403}, Case{403, 531}, Case{404, 530}, Case{503, 535},
                       Case{400, 530}, Case{418, 530}, Case{501, 530}}) {
    CAPTURE(c.status);
    REQUIRE(f.http.del("/_calls").status == 204);
    f.fault(json{{"path_prefix", "/merchant/login"}, {"status", c.status}, {"times", 1}});
    const auto t = capture([&] { f.agent(good)->login(); });
    CHECK(t.code == c.code);
    CHECK(t.nested_type == "http_status");
    CHECK(t.http_status == c.status);
    CHECK(f.login_calls().size() == 1);  // none of these is retried
  }
  CHECK(midas_api::merchant_error_for_status(504).code == 535);
}

TEST_CASE("500, 502 and 504 are retried with backoff, and a later success is a success") {
  Fixture f;
  f.fault(json::array({json{{"path_prefix", "/merchant/login"}, {"status", 500}},
                       json{{"path_prefix", "/merchant/login"}, {"status", 502}},
                       json{{"path_prefix", "/merchant/login"}, {"status", 504}}}));
  auto agent = f.agent(creds("6332040066666666666", "six", "rg6 6aa"));
  CHECK_NOTHROW(agent->login());
  CHECK(agent->balance()->points.text == "1480");
  const auto calls = f.login_calls();
  REQUIRE(calls.size() == 4);
  // Sleeps of 20, 40 and 80 ms (backoff_factor x 2^n) separate the four requests.
  const auto gap = [&](std::size_t i) {
    return calls[i]["epoch_ms"].get<std::int64_t>() - calls[i - 1]["epoch_ms"].get<std::int64_t>();
  };
  CHECK(gap(1) >= 19);  // whole milliseconds on both sides
  CHECK(gap(2) >= 39);
  CHECK(gap(3) >= 79);
  // Every try is the same request.
  CHECK(calls[0]["body"] == calls[3]["body"]);
}

TEST_CASE("retries exhausted on 5xx are 429, with the last status nested") {
  Fixture f;
  f.fault(json{{"path_prefix", "/merchant/login"}, {"status", 504}, {"times", -1}});
  const auto t = capture([&] { f.agent(creds("6332040066666666666", "six", "rg6 6aa"))->login(); });
  CHECK(t.code == 429);
  CHECK(t.nested_type == "retries_exhausted");
  CHECK(t.attempts == 4);
  CHECK(t.http_status == 504);
  CHECK(f.login_calls().size() == 4);
  CHECK(t.message.empty());  // the generic message of errors.json
}

TEST_CASE("max_retries 0 sends one request only") {
  Fixture f;
  f.context.http.max_retries = 0;
  f.fault(json{{"path_prefix", "/merchant/login"}, {"status", 500}, {"times", -1}});
  CHECK(capture([&] { f.agent(creds("6332040066666666666", "six", "rg6 6aa"))->login(); }).code ==
        429);
  CHECK(f.login_calls().size() == 1);
}

TEST_CASE("transport failures are 530 with the transport error nested, after the retries") {
  Fixture f;
  const auto good = creds("6332040066666666666", "six", "rg6 6aa");

  SUBCASE("connection dropped every time") {
    f.fault(json{{"path_prefix", "/merchant/login"}, {"drop_connection", true}, {"times", -1}});
    const auto t = capture([&] { f.agent(good)->login(); });
    CHECK(t.code == 530);
    CHECK(t.nested_type == "transport");
    CHECK(t.transport_kind == midas_api::TransportError::Kind::connection_lost);
    CHECK(t.attempts == 4);
    CHECK(f.login_calls().size() == 4);
  }
  SUBCASE("connection dropped twice, then an answer") {
    f.fault(json{{"path_prefix", "/merchant/login"}, {"drop_connection", true}, {"times", 2}});
    CHECK_NOTHROW(f.agent(good)->login());
    CHECK(f.login_calls().size() == 3);
  }
  SUBCASE("no answer within the timeout") {
    f.fault(json{{"path_prefix", "/merchant/login"}, {"delay_ms", 1500}, {"times", -1}});
    const auto started = std::chrono::steady_clock::now();
    const auto t = capture([&] { f.agent(good)->login(); });
    CHECK(t.code == 530);
    CHECK(t.nested_type == "transport");
    CHECK(t.transport_kind == midas_api::TransportError::Kind::timeout);
    CHECK(t.attempts == 4);
    // Four tries of 400 ms, not four of 1500 ms.
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::milliseconds{4000});
  }
  SUBCASE("connection refused") {
    const int closed_port = [&] {
      auto other = e2e::start_mock_merchant({}, "mock_merchant_closed");
      const int p = other->port();
      other->stop();
      return p;
    }();
    f.config.merchant_url = "http://127.0.0.1:" + std::to_string(closed_port) + "/merchant";
    const auto t = capture([&] { f.agent(good)->login(); });
    CHECK(t.code == 530);
    CHECK(t.nested_type == "transport");
    CHECK(t.transport_kind == midas_api::TransportError::Kind::connect);
    CHECK(t.attempts == 4);
  }
}

TEST_CASE("the nested cause is a std::nested_exception the way client libraries wrap errors") {
  Fixture f;
  f.fault(json{{"path_prefix", "/merchant/login"}, {"status", 503}});
  try {
    f.agent(creds("6332040066666666666", "six", "rg6 6aa"))->login();
    FAIL("login should have thrown");
  } catch (const std::exception& e) {
    const auto* agent_error = dynamic_cast<const AgentError*>(&e);
    REQUIRE(agent_error != nullptr);
    CHECK(agent_error->code() == 535);
    const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
    REQUIRE(nested != nullptr);
    REQUIRE(nested->nested_ptr() != nullptr);
    CHECK_THROWS_AS(nested->rethrow_nested(), midas_api::HttpStatusError);
  }
}

TEST_CASE("join is accepted asynchronously and the callback gives the identifiers") {
  Fixture f;
  const json join_credentials{{"title", "Mr"},
                              {"first_name", "New"},
                              {"last_name", "Joiner"},
                              {"email", "new.joiner@example.com"},
                              {"postcode", "ab1 2cd"},
                              {"password", "not-for-the-merchant"},
                              {"consents", json::array({json{{"id", 1}, {"value", true}}})}};
  auto agent = f.agent(join_credentials, 99);
  const auto result = agent->join();
  CHECK(result.expecting_callback);
  CHECK(result.identifier.empty());

  const auto joins = f.http.get("/_calls?path_prefix=/merchant/join").json_body;
  REQUIRE(joins.size() == 1);
  const json& sent = joins[0]["body"];
  CHECK(sent["email"] == "new.joiner@example.com");
  CHECK(sent["record_uid"] == midas_api::crypto::record_uid(99));
  CHECK(sent["callback_url"] == f.config.callback_url);
  CHECK_FALSE(sent.contains("password"));
  CHECK_FALSE(sent.contains("consents"));

  // The merchant calls back (here to its own recorder); the agent reads the result.
  REQUIRE(e2e::eventually([&] {
    return f.http.get("/_calls?path_prefix=/hermes/join-callback").json_body.size() == 1;
  }));
  const json callback =
      f.http.get("/_calls?path_prefix=/hermes/join-callback").json_body.at(0)["body"];
  CHECK(callback["record_uid"] == midas_api::crypto::record_uid(99));
  CHECK(midas_api::crypto::decode_record_uid(callback["record_uid"].get<std::string>()) == 99);
  const auto done = f.agent(json::object(), 99)->join_callback(callback);
  CHECK_FALSE(done.expecting_callback);
  CHECK(done.identifier == json{{"barcode", callback["barcode"]},
                                {"card_number", callback["card_number"]},
                                {"merchant_identifier", callback["merchant_scheme_id2"]}});

  // The same person again: the callback says the account exists -> 445.
  REQUIRE(f.agent(join_credentials, 100)->join().expecting_callback);
  REQUIRE(e2e::eventually([&] {
    return f.http.get("/_calls?path_prefix=/hermes/join-callback").json_body.size() == 2;
  }));
  const json again =
      f.http.get("/_calls?path_prefix=/hermes/join-callback").json_body.at(1)["body"];
  CHECK(capture([&] { f.agent(json::object(), 100)->join_callback(again); }).code == 445);
}

TEST_CASE("join failures: error codes, missing fields, merchant faults") {
  Fixture f;
  const json good{
      {"first_name", "A"}, {"last_name", "B"}, {"email", "x@example.com"}, {"postcode", "c1 1cc"}};
  CHECK(capture([&] { f.agent(json{{"first_name", "A"}})->join(); }).code == 538);
  CHECK(capture([&] {
          f.agent(json::object())
              ->join_callback(json{{"error_codes", json::array({json{{"code", "JOIN_ERROR"}}})}});
        }).code == 538);
  CHECK(capture([&] {
          f.agent(json::object())->join_callback(json{{"message_uid", "x"}});
        }).code == 520);
  f.fault(json{{"path_prefix", "/merchant/join"}, {"status", 503}, {"times", 2}});
  CHECK(capture([&] { f.agent(good)->join(); }).code == 535);
  CHECK(capture([&] { f.agent(good)->join(); }).code == 535);
  CHECK(f.agent(good)->join().expecting_callback);
}
