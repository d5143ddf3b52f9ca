// SPDX-License-Identifier: MIT
// midas-api and midas-mock-merchant as separate processes on free loopback ports, driven over
// HTTP: balances (exact JSON) through the iceland-bonus-card agent and the mock agents,
// transactions with their hashes, what reaches the Hermes/Hades stub, request errors, merchant
// faults mapped to Midas errors, and the login retry limit.

#include <doctest/doctest.h>

#include <cctype>
#include <cstdio>
#include <fstream>

#include "crypto/credentials.hpp"
#include "e2e_support.hpp"

using e2e::json;

namespace {

const std::string kAesKey = "e2e-test-aes-key";

std::string encrypt(const json& credentials) {
  auto e = midas_api::crypto::encrypt_credentials(credentials, kAesKey);
  REQUIRE(e.has_value());
  return *e;
}

json iceland(const std::string& card, const std::string& last_name, const std::string& postcode) {
  return json{{"card_number", card}, {"last_name", last_name}, {"postcode", postcode}};
}

/// The Midas error body of errors.json's generic messages.
json midas_error(int code) {
  switch (code) {
    case 403:
      return json{{"message",
                   "We could not update your account because your username and/or password were "
                   "reported to be incorrect. Please re-verify your username and password."},
                  {"code", 403},
                  {"name", "Invalid credentials"}};
    case 429:
      return json{{"message",
                   "You have reached your maximum amount of login tries. Please wait 15 minutes."},
                  {"code", 429},
                  {"name", "Retry limit reached"}};
    case 520:
      return json{
          {"message", "An unknown error has occurred."}, {"code", 520}, {"name", "Unknown error"}};
    case 530:
      return json{{"message", "The scheme end site is currently down."},
                  {"code", 530},
                  {"name", "End site down"}};
    case 531:
      return json{{"message", "The end site is currently blocking this ip address."},
                  {"code", 531},
                  {"name", "IP blocked"}};
    case 535:
      return json{
          {"message", "Message was not sent."}, {"code", 535}, {"name", "Message was not sent"}};
    case 536:
      return json{{"message",
                   "There is an error with the configuration or it was not possible to retrieve."},
                  {"code", 536},
                  {"name", "Configuration error"}};
    default:
      FAIL("no expected body for " << code);
      return json{};
  }
}

/// midas-mock-merchant + midas-api wired together, both stopped when this goes away.
struct Stack {
  std::unique_ptr<e2e::Process> merchant;
  std::unique_ptr<e2e::Process> api;
  std::unique_ptr<e2e::Http> m;  ///< The merchant/Hermes/Hades stub.
  std::unique_ptr<e2e::Http> a;  ///< midas-api.

  /// `merchant_entry` false: no MERCHANT_CONFIG at all.
  explicit Stack(bool merchant_entry = true, double timeout_seconds = 0.5) {
    merchant = e2e::start_mock_merchant({"--callback-delay-ms", "50"}, "e2e_api_merchant");
    m = std::make_unique<e2e::Http>(merchant->url());
    std::vector<std::pair<std::string, std::string>> env{
        {"AES_KEY", kAesKey},
        {"HERMES_URL", merchant->url() + "/hermes"},
        {"HADES_URL", merchant->url() + "/hades"},
        {"MIDAS_BACKEND_URL", "memory://"},
        {"LOG_JSON", "true"},
        {"LOG_LEVEL", "info"}};
    if (merchant_entry) {
      const std::string path = e2e::log_path("e2e_api_merchant_config") + ".json";
      std::ofstream out(path);
      out << json{{"iceland-bonus-card",
                   {{"merchant_url", merchant->url() + "/merchant"},
                    {"security_type", "rsa"},
                    {"public_key_pem", e2e::read_text(std::string(MIDAS_MOCK_MERCHANT_KEYS_DIR) +
                                                      "/merchant_public.pem")},
                    {"timeout_seconds", timeout_seconds},
                    {"max_retries", 3},
                    {"backoff_factor_seconds", 0.02}}}}
                 .dump(2);
      out.close();
      env.emplace_back("MERCHANT_CONFIG", path);
    }
    api = std::make_unique<e2e::Process>(
        std::vector<std::string>{MIDAS_API_BIN, "--port", "0", "--host", "127.0.0.1"}, env,
        e2e::log_path("e2e_api_midas_api"),
        std::vector<std::string>{"MERCHANT_CONFIG", "REDIS_URL", "DEV_PORT", "DEV_HOST",
                                 "AES_KEY_FILE", "SERVICE_API_KEY", "MIDAS_DATA_DIR"});
    a = std::make_unique<e2e::Http>(api->url());
  }

  e2e::Reply get(const std::string& endpoint, const json& credentials,
                 const std::string& extra = "scheme_account_id=5&user_id=9",
                 const httplib::Headers& headers = {}) {
    return a->get(endpoint + "?credentials=" + e2e::url_encode(encrypt(credentials)) + "&" + extra,
                  headers);
  }
  json calls(const std::string& prefix) {
    return m->get("/_calls?path_prefix=" + e2e::url_encode(prefix)).json_body;
  }
  /// Waits until `n` calls under `prefix` were recorded (publishing is asynchronous).
  json wait_calls(const std::string& prefix, std::size_t n) {
    e2e::eventually([&] { return calls(prefix).size() >= n; });
    return calls(prefix);
  }
  void fault(const json& f) { REQUIRE(m->post("/_faults", f).status == 201); }
};

}  // namespace

TEST_CASE("balance through iceland-bonus-card for several merchant customers, exact JSON") {
  Stack s;
  struct Case {
    json credentials;
    json expected;
  };
  const Case cases[] = {
      {iceland("6332040066666666666", "six", "rg6 6aa"),
       json::parse(R"({"points": 1480, "value": 1480, "value_label": "£1480.00", "reward_tier": 0,
                       "scheme_account_id": 5, "user_set": "9", "points_label": "1480"})")},
      {iceland("6332040011111111111", "One", "RG1 1AA"),
       json::parse(R"({"points": 20.1, "value": 20.1, "value_label": "£20.10", "reward_tier": 0,
                       "scheme_account_id": 5, "user_set": "9", "points_label": "20"})")},
      {iceland("6332040050607087777", "smith-s", "mp7 1bb"),
       json::parse(R"({"points": 1234567, "value": 1234567, "value_label": "£1234567.00",
                       "reward_tier": 0, "scheme_account_id": 5, "user_set": "9",
                       "points_label": "1M"})")},
      {iceland("6332040050607088888", "eight", "mp8 8bb"),
       json::parse(R"({"points": 12345678.9, "value": 12345678.9, "value_label": "Reward",
                       "reward_tier": 0, "scheme_account_id": 5, "user_set": "9",
                       "points_label": "12M"})")},
      {iceland("6332040000000000000", "zero", "rg0 0aa"),
       json::parse(R"({"points": 0, "value": 0, "value_label": "£0.00", "reward_tier": 0,
                       "scheme_account_id": 5, "user_set": "9", "points_label": "0"})")},
  };
  for (const auto& c : cases) {
    CAPTURE(c.credentials.dump());
    const auto r = s.get("/iceland-bonus-card/balance", c.credentials);
    CHECK(r.status == 200);
    CHECK(r.json_body == c.expected);
  }
  // user_set and bink_user_id are echoed.
  const auto echoed =
      s.get("/iceland-bonus-card/balance", iceland("6332040011111111111", "one", "rg1 1aa"),
            "scheme_account_id=77&user_set=3,4&bink_user_id=12");
  CHECK(echoed.status == 200);
  CHECK(echoed.json_body["scheme_account_id"] == 77);
  CHECK(echoed.json_body["user_set"] == "3,4");
  CHECK(echoed.json_body["bink_user_id"] == 12);
}

TEST_CASE("balance through the in-process mock agents, exact JSON") {
  Stack s;
  CHECK(s.get("/iceland-bonus-card-mock/balance", iceland("6332040066666666666", "six", "rg6 6aa"))
            .json_body == json::parse(R"({"points": 1480, "value": 1480,
              "value_label": "£1480.00", "reward_tier": 0, "scheme_account_id": 5,
              "user_set": "9", "points_label": "1480"})"));
  CHECK(s.get("/iceland-bonus-card-mock/balance", iceland("6332040011111111111", "one", "rg1 1aa"))
            .json_body == json::parse(R"({"points": 20.1, "value": 20.1,
              "value_label": "£20.10", "reward_tier": 0, "scheme_account_id": 5,
              "user_set": "9", "points_label": "20"})"));
  CHECK(s.get("/harvey-nichols-mock/balance",
              json{{"email", "six@testbink.com"}, {"password", "Password01"}})
            .json_body == json::parse(R"({"points": 1480, "value": 0, "value_label": "",
              "reward_tier": 1, "scheme_account_id": 5, "user_set": "9",
              "points_label": "1480"})"));
  // Nothing of the mocks reaches the merchant.
  CHECK(s.calls("/merchant").empty());
}

TEST_CASE("a balance publishes to Hermes and Hades through the stub, with the transaction id") {
  Stack s;
  const auto r =
      s.get("/iceland-bonus-card/balance", iceland("6332040066666666666", "six", "rg6 6aa"),
            "scheme_account_id=5&user_id=9", {{"transaction", "tid-e2e-1"}});
  REQUIRE(r.status == 200);

  // Identifiers the merchant knows and the credentials lack: PUT to Hermes (through the
  // asynchronous publisher, so it may land just after the answer).
  const auto creds = s.wait_calls("/hermes/schemes/accounts/5/credentials", 1);
  REQUIRE(creds.size() == 1);
  CHECK(creds[0]["method"] == "PUT");
  CHECK(creds[0]["body"] ==
        json{{"barcode", "63320400666666666660"}, {"merchant_identifier", "MS2-666666"}});
  CHECK(creds[0]["headers"]["transaction"] == "tid-e2e-1");

  const auto balance = s.wait_calls("/hades/balance", 1);
  REQUIRE(balance.size() == 1);
  CHECK(balance[0]["method"] == "POST");
  CHECK(balance[0]["body"] == r.json_body);
  CHECK(balance[0]["headers"]["transaction"] == "tid-e2e-1");

  const auto txs = s.wait_calls("/hades/transactions", 1);
  REQUIRE(txs.size() == 1);
  REQUIRE(txs[0]["body"].is_array());
  CHECK(txs[0]["body"].size() == 6);
  CHECK(txs[0]["body"][0]["hash"] == "61a2299d9a8ef1a2d87b01612ef6ad36");

  const auto status = s.wait_calls("/hermes/schemes/accounts/5/status", 1);
  REQUIRE(status.size() == 1);
  CHECK(status[0]["method"] == "POST");
  CHECK(status[0]["body"]["status"] == 1);
  CHECK(status[0]["body"]["user_info"]["scheme_account_id"] == 5);
  CHECK(status[0]["headers"]["transaction"] == "tid-e2e-1");
  // Decrypted credentials never go to Hermes in the status.
  CHECK_FALSE(status[0]["body"]["user_info"].contains("credentials"));

  // The merchant got one login with the agent's ids.
  const auto logins = s.calls("/merchant/login");
  REQUIRE(logins.size() == 1);
  CHECK(logins[0]["body"]["card_number"] == "6332040066666666666");
  CHECK(logins[0]["body"]["record_uid"].get<std::string>().size() == 32);
}

TEST_CASE("transactions through iceland-bonus-card carry their hashes") {
  Stack s;
  const auto r =
      s.get("/iceland-bonus-card/transactions", iceland("6332040066666666666", "six", "rg6 6aa"));
  REQUIRE(r.status == 200);
  REQUIRE(r.json_body.is_array());
  REQUIRE(r.json_body.size() == 6);
  // md5(date + description + points + scheme_account_id + location + index), computed apart.
  CHECK(r.json_body[0] == json::parse(R"({"date": "2018-07-01 14:24:15+00:00",
      "description": "Test transaction: 1 item", "points": 20.71,
      "hash": "61a2299d9a8ef1a2d87b01612ef6ad36", "scheme_account_id": 5, "user_set": "9"})"));
  CHECK(r.json_body[1]["hash"] == "dee5a065d4e6f749786657529d4b2751");
  CHECK(r.json_body[1]["points"] == -100.01);
  CHECK(r.json_body[5]["hash"] == "feca525caca283f9050316cc2d58626b");
  CHECK(r.json_body[5]["date"] == "2018-09-05 11:30:50+00:00");
  const auto published = s.wait_calls("/hades/transactions", 1);
  REQUIRE(published.size() == 1);
  CHECK(published[0]["body"] == r.json_body);

  const auto overview = s.get("/iceland-bonus-card/account_overview",
                              iceland("6332040011111111111", "one", "rg1 1aa"));
  REQUIRE(overview.status == 200);
  CHECK(overview.json_body["balance"]["points"] == 20.1);
  REQUIRE(overview.json_body["transactions"].size() == 1);
  CHECK(overview.json_body["transactions"][0]["description"] == "Test transaction: 1 item");
}

TEST_CASE("request errors: unknown slug, missing parameters, garbage credentials") {
  Stack s;
  const auto good = iceland("6332040066666666666", "six", "rg6 6aa");

  const auto unknown = s.get("/no-such-scheme/balance", good);
  CHECK(unknown.status == 404);
  CHECK(unknown.json_body == json{{"message", "No such agent"}});
  const auto wallet_only = s.wait_calls("/hermes/schemes/accounts/5/status", 1);
  REQUIRE(wallet_only.size() == 1);
  CHECK(wallet_only[0]["body"]["status"] == 10);

  const auto no_user =
      s.get("/iceland-bonus-card/balance", good, "scheme_account_id=5");  // neither user_set nor id
  CHECK(no_user.status == 400);
  CHECK(no_user.json_body ==
        json{{"message", "Please provide either \"user_set\" or \"user_id\" parameters"}});

  for (const std::string& query :
       {std::string("scheme_account_id=5&user_id=9"),                    // no creds
        "credentials=" + e2e::url_encode(encrypt(good)) + "&user_id=9",  // no id
        "credentials=" + e2e::url_encode(encrypt(good)) +
            "&scheme_account_id=x&user_id=9",                                // not int
        std::string("credentials=%21%21%21&scheme_account_id=5&user_id=9"),  // not base64
        std::string("credentials=QUJD&scheme_account_id=5&user_id=9"),       // too short
        "credentials=" +
            e2e::url_encode(*midas_api::crypto::encrypt_credentials(good, "some other key")) +
            "&scheme_account_id=5&user_id=9",  // wrong key
        "credentials=" + e2e::url_encode(*midas_api::crypto::encrypt_text("not json", kAesKey)) +
            "&scheme_account_id=5&user_id=9"}) {
    CAPTURE(query);
    const auto r = s.a->get("/iceland-bonus-card/balance?" + query);
    CHECK(r.status == 400);
    REQUIRE(r.json_body.is_object());
    CHECK(r.json_body.size() == 1);
    CHECK(r.json_body["message"].is_string());
  }
  // None of these reached the merchant.
  CHECK(s.calls("/merchant").empty());
}

TEST_CASE("merchant answers and faults map to Midas errors through iceland-bonus-card") {
  Stack s(true, 0.3);
  const auto good = iceland("6332040066666666666", "six", "rg6 6aa");
  auto balance = [&] { return s.get("/iceland-bonus-card/balance", good); };
  auto logins = [&] { return s.calls("/merchant/login").size(); };

  SUBCASE("a timeout is 530 End site down, after the retries") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"delay_ms", 2000}, {"times", -1}});
    const auto r = balance();
    CHECK(r.status == 530);
    CHECK(r.json_body == midas_error(530));
    CHECK(logins() == 4);
  }
  SUBCASE("a dropped connection is 530, after the retries") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"drop_connection", true}, {"times", -1}});
    const auto r = balance();
    CHECK(r.status == 530);
    CHECK(r.json_body == midas_error(530));
    CHECK(logins() == 4);
  }
  SUBCASE("two dropped connections, then an answer: the retries make it a success") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"drop_connection", true}, {"times", 2}});
    CHECK(balance().status == 200);
    CHECK(logins() == 3);
  }
  SUBCASE("401 is 403 Invalid credentials") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"status", 401}});
    const auto r = balance();
    CHECK(r.status == 403);
    CHECK(r.json_body == midas_error(403));
  }
  SUBCASE("403 is 531 IP blocked") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"status", 403}});
    CHECK(balance().json_body == midas_error(531));
  }
  SUBCASE("503 is 535 Message was not sent (503 is not retried by the request retries)") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"status", 503}, {"times", -1}});
    const auto r = balance();
    CHECK(r.status == 535);
    CHECK(r.json_body == midas_error(535));
    CHECK(logins() == 1);
    // Hermes hears the error code as the account status.
    const auto status = s.wait_calls("/hermes/schemes/accounts/5/status", 1);
    REQUIRE(status.size() == 1);
    CHECK(status[0]["body"]["status"] == 535);
  }
  SUBCASE("504 on every retry is 429 (retries exhausted)") {
    s.fault(json{{"path_prefix", "/merchant/login"}, {"status", 504}, {"times", -1}});
    const auto r = balance();
    CHECK(r.status == 429);
    CHECK(r.json_body == midas_error(429));
    CHECK(logins() == 4);
  }
  SUBCASE("500 then 502, then an answer: a success after three requests") {
    s.fault(json::array({json{{"path_prefix", "/merchant/login"}, {"status", 500}},
                         json{{"path_prefix", "/merchant/login"}, {"status", 502}}}));
    CHECK(balance().status == 200);
    CHECK(logins() == 3);
  }
  SUBCASE("the merchant's error codes map through the agent's table; unknown ones are 520") {
    CHECK(s.get("/iceland-bonus-card/balance", iceland("6332040066666666666", "wrong", "rg6 6aa"))
              .json_body == midas_error(403));
    const auto link =
        s.get("/iceland-bonus-card/balance", iceland("6332040000300000003", "limited", "rg3 3aa"));
    CHECK(link.status == 437);
    CHECK(link.json_body["name"] == "Card not registered or Unknown");
    const auto odd =
        s.get("/iceland-bonus-card/balance", iceland("6332040000400000004", "oddity", "rg4 4aa"));
    CHECK(odd.status == 520);
    CHECK(odd.json_body["code"] == 520);
    CHECK(odd.json_body["name"] == "Unknown error");
  }
}

TEST_CASE("the login retry limit: five failed logins, then 429 without asking the merchant") {
  Stack s;
  const auto wrong = iceland("6332040066666666666", "wrong-name", "rg6 6aa");
  const auto good = iceland("6332040066666666666", "six", "rg6 6aa");
  for (int i = 1; i <= 5; ++i) {
    CAPTURE(i);
    const auto r = s.get("/iceland-bonus-card/balance", wrong, "scheme_account_id=31&user_id=9");
    CHECK(r.status == 403);
  }
  CHECK(s.calls("/merchant/login").size() == 5);
  const auto limited =
      s.get("/iceland-bonus-card/balance", wrong, "scheme_account_id=31&user_id=9");
  CHECK(limited.status == 429);
  CHECK(limited.json_body == midas_error(429));
  // Even good credentials wait out the 15 minutes now; the merchant is not asked.
  CHECK(s.get("/iceland-bonus-card/balance", good, "scheme_account_id=31&user_id=9").status == 429);
  CHECK(s.calls("/merchant/login").size() == 5);
  // Another scheme account is not affected.
  CHECK(s.get("/iceland-bonus-card/balance", good, "scheme_account_id=32&user_id=9").status == 200);
  // The mock agents have no limit.
  for (int i = 0; i < 7; ++i) {
    CHECK(
        s.get("/iceland-bonus-card-mock/balance", wrong, "scheme_account_id=33&user_id=9").status ==
        403);
  }
}

TEST_CASE("without a MERCHANT_CONFIG entry iceland-bonus-card answers 536 Configuration error") {
  Stack s(false);
  const auto r =
      s.get("/iceland-bonus-card/balance", iceland("6332040066666666666", "six", "rg6 6aa"));
  CHECK(r.status == 536);
  CHECK(r.json_body == midas_error(536));
  CHECK(s.calls("/merchant").empty());
  // The mock agents still work.
  CHECK(s.get("/iceland-bonus-card-mock/balance", iceland("6332040066666666666", "six", "rg6 6aa"))
            .status == 200);
}

TEST_CASE("GET /agents lists iceland-bonus-card with its credential fields") {
  Stack s;
  const auto r = s.a->get("/agents");
  REQUIRE(r.status == 200);
  REQUIRE(r.json_body.contains("iceland-bonus-card"));
  CHECK(r.json_body["iceland-bonus-card"] == json::array({"card_number", "last_name", "postcode"}));
}

TEST_CASE("midas-api stops cleanly on SIGTERM right after serving and publishing") {
  Stack s;
  // A slow Hermes/Hades, so publishing is still in flight when the signal comes.
  s.fault(json{{"path_prefix", "/hades"}, {"delay_ms", 400}, {"times", -1}});
  s.fault(json{{"path_prefix", "/hermes"}, {"delay_ms", 400}, {"times", -1}});
  REQUIRE(
      s.get("/iceland-bonus-card-mock/balance", iceland("6332040066666666666", "six", "rg6 6aa"))
          .status == 200);
  const auto started = std::chrono::steady_clock::now();
  const int status = s.api->stop();
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds{4});
  REQUIRE(WIFEXITED(status));  // not killed by the SIGKILL that follows 5 s of waiting
  CHECK(WEXITSTATUS(status) == 0);
}
