// SPDX-License-Identifier: MIT
// midas-mock-merchant on its own: its merchant API, signed join callbacks (checked with the
// midas_api crypto library, an independent implementation), the Hermes/Hades stubs, the call
// recorder and fault injection.

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <fstream>

#include "crypto/signature.hpp"
#include "e2e_support.hpp"

using e2e::json;

namespace {

const std::string kPublicKeyPath =
    std::string(MIDAS_MOCK_MERCHANT_KEYS_DIR) + "/merchant_public.pem";

json login_body(const std::string& card, const std::string& last_name,
                const std::string& postcode) {
  return json{{"card_number", card},
              {"last_name", last_name},
              {"postcode", postcode},
              {"message_uid", "m-1"},
              {"record_uid", "r-1"}};
}

std::string first_code(const json& body) {
  if (!body.is_object() || !body.contains("error_codes")) return "";
  return body["error_codes"].at(0).at("code").get<std::string>();
}

}  // namespace

TEST_CASE("the mock merchant prints its URL first, answers /_health and stops on SIGTERM") {
  auto merchant = e2e::start_mock_merchant();
  CHECK(merchant->first_line().rfind("listening on http://127.0.0.1:", 0) == 0);
  CHECK(merchant->port() > 0);
  e2e::Http http(merchant->url());
  const auto health = http.get("/_health");
  CHECK(health.status == 200);
  CHECK(health.json_body == json{{"status", "ok"}});
  const int status = merchant->stop();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("merchant login answers the customer's balance, transactions and identifiers") {
  auto merchant = e2e::start_mock_merchant();
  e2e::Http http(merchant->url());

  SUBCASE("a good login, names and postcodes compared case-insensitively") {
    const auto r =
        http.post("/merchant/login", login_body("6332040011111111111", "ONE", " RG1 1AA"));
    REQUIRE(r.status == 200);
    CHECK(r.json_body == json::parse(R"({
      "message_uid": "m-1", "record_uid": "r-1", "balance": 20.1,
      "transactions": [{"timestamp": "2018-07-01T14:24:15+00:00",
                        "reference": "Test transaction: 1 item", "value": 20.71}],
      "barcode": "63320400111111111110", "card_number": "6332040011111111111",
      "merchant_scheme_id2": "MS2-111111"})"));
  }
  SUBCASE("six has six transactions") {
    const auto r =
        http.post("/merchant/login", login_body("6332040066666666666", "six", "rg6 6aa"));
    REQUIRE(r.status == 200);
    CHECK(r.json_body["balance"] == 1480);
    CHECK(r.json_body["transactions"].size() == 6);
  }
  SUBCASE("each refusal has its error code, with HTTP 200") {
    struct Case {
      json body;
      std::string code;
    };
    const Case cases[] = {
        {login_body("6332040011111111111", "two", "rg1 1aa"), "VALIDATION"},
        {login_body("6332040011111111111", "one", "rg9 9zz"), "VALIDATION"},
        {json{{"card_number", "6332040011111111111"}, {"last_name", "one"}}, "VALIDATION"},
        {login_body("6332-0400", "one", "rg1 1aa"), "CARD_NUMBER_ERROR"},
        {login_body("6332040031231231234", "one", "rg1 1aa"), "PRE_REGISTERED_ERROR"},
        {login_body("6332049999999999999", "one", "rg1 1aa"), "CARD_NOT_REGISTERED"},
        {login_body("6332040000300000003", "limited", "rg3 3aa"), "LINK_LIMIT_EXCEEDED"},
        {login_body("6332040000400000004", "oddity", "rg4 4aa"),
         "SOMETHING_THE_AGENT_DOES_NOT_KNOW"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.body.dump());
      const auto r = http.post("/merchant/login", c.body);
      CHECK(r.status == 200);
      CHECK(first_code(r.json_body) == c.code);
      CHECK_FALSE(r.json_body.contains("balance"));
    }
  }
  SUBCASE("a body that is not a JSON object is a 400") {
    CHECK(http.post_text("/merchant/login", "card=1", "application/x-www-form-urlencoded").status ==
          400);
    CHECK(http.post("/merchant/login", json::array({1, 2})).status == 400);
    CHECK(http.get("/merchant/login").status == 405);
  }
}

TEST_CASE("--api-key makes the merchant API require Authorization: Token <key>") {
  auto merchant = e2e::start_mock_merchant({"--api-key", "s3cret"});
  e2e::Http http(merchant->url());
  const auto body = login_body("6332040011111111111", "one", "rg1 1aa");
  CHECK(http.post("/merchant/login", body).status == 401);
  CHECK(http.post("/merchant/login", body, {{"Authorization", "Token wrong"}}).status == 401);
  CHECK(http.post("/merchant/login", body, {{"Authorization", "Token s3cret"}}).status == 200);
}

TEST_CASE("a join is accepted at once and its result arrives later as a signed callback") {
  auto merchant = e2e::start_mock_merchant({"--callback-delay-ms", "200"});
  e2e::Http http(merchant->url());
  const std::string sink = merchant->url() + "/hermes/callback-sink";  // recorded like any call
  const auto public_key = e2e::read_text(kPublicKeyPath);

  auto join = [&](const std::string& email, const std::string& postcode) {
    return http.post("/merchant/join", json{{"first_name", "Ann"},
                                            {"last_name", "Other"},
                                            {"email", email},
                                            {"postcode", postcode},
                                            {"message_uid", "m-" + email},
                                            {"record_uid", "r-" + email},
                                            {"callback_url", sink}});
  };
  auto callbacks_to_sink = [&] { return http.get("/_calls?path_prefix=/hermes/callback-sink"); };

  SUBCASE("success: a new card that can then log in") {
    const auto started = std::chrono::steady_clock::now();
    const auto accepted = join("new.person@example.com", "ab1 2cd");
    REQUIRE(accepted.status == 202);
    CHECK(accepted.json_body == json{{"message_uid", "m-new.person@example.com"},
                                     {"record_uid", "r-new.person@example.com"},
                                     {"status", "accepted"}});
    REQUIRE(e2e::eventually([&] { return callbacks_to_sink().json_body.size() == 1; }));
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds{200});
    const json call = callbacks_to_sink().json_body.at(0);
    const json& body = call["body"];
    CHECK(body["message_uid"] == "m-new.person@example.com");
    CHECK(body["record_uid"] == "r-new.person@example.com");
    CHECK_FALSE(body.contains("error_codes"));
    const std::string card = body["card_number"].get<std::string>();
    CHECK(card == "6332040090000000001");
    CHECK(body["barcode"] == card + "0");
    CHECK(body["merchant_scheme_id2"] == "MS2-J0000000001");

    // The signature covers the exact body text sent + the timestamp header.
    const std::string auth = call["headers"]["authorization"].get<std::string>();
    REQUIRE(auth.rfind("Signature ", 0) == 0);
    const std::int64_t ts = std::stoll(call["headers"]["x-req-timestamp"].get<std::string>());
    CHECK(std::abs(ts - static_cast<std::int64_t>(std::time(nullptr))) < 30);
    const std::string sent_text = body.dump();  // compact, sorted keys: what the merchant sends
    const auto check =
        midas_api::crypto::verify_signature(public_key, sent_text, ts, auth.substr(10));
    CHECK_MESSAGE(check.valid, check.reason);
    CHECK_FALSE(
        midas_api::crypto::verify_signature(public_key, sent_text, ts + 1, auth.substr(10)).valid);

    // The outcome is listed, with the sink's answer.
    const auto sent = http.get("/_callbacks").json_body;
    REQUIRE(sent.size() == 1);
    CHECK(sent[0]["status"] == 200);
    CHECK(sent[0]["url"] == sink);

    // The new customer exists now.
    const auto login = http.post("/merchant/login", login_body(card, "other", "AB1 2CD"));
    CHECK(login.status == 200);
    CHECK(login.json_body["balance"] == 0);
  }
  SUBCASE("an email already known: ACCOUNT_ALREADY_EXISTS in the callback") {
    REQUIRE(join("SIX@testbink.com", "ab1 2cd").status == 202);
    REQUIRE(e2e::eventually([&] { return callbacks_to_sink().json_body.size() == 1; }));
    const json body = callbacks_to_sink().json_body.at(0)["body"];
    CHECK(first_code(body) == "ACCOUNT_ALREADY_EXISTS");
    CHECK_FALSE(body.contains("card_number"));
  }
  SUBCASE("postcode 'fail' or 'fa1 1fa': JOIN_ERROR in the callback") {
    REQUIRE(join("a@example.com", "fail").status == 202);
    REQUIRE(join("b@example.com", "FA1 1FA").status == 202);
    REQUIRE(e2e::eventually([&] { return callbacks_to_sink().json_body.size() == 2; }));
    for (const auto& call : callbacks_to_sink().json_body) {
      CHECK(first_code(call["body"]) == "JOIN_ERROR");
    }
  }
  SUBCASE("a missing field is refused at once, and nothing is called back") {
    const auto r = http.post("/merchant/join", json{{"first_name", "Ann"}, {"callback_url", sink}});
    CHECK(r.status == 200);
    CHECK(first_code(r.json_body) == "VALIDATION");
    std::this_thread::sleep_for(std::chrono::milliseconds{400});
    CHECK(callbacks_to_sink().json_body.empty());
  }
}

TEST_CASE("--callback-url overrides the join request's callback_url") {
  auto receiver = e2e::start_mock_merchant({}, "mock_merchant_receiver");
  auto merchant = e2e::start_mock_merchant(
      {"--callback-delay-ms", "0", "--callback-url", receiver->url() + "/hades/from-merchant"});
  e2e::Http http(merchant->url());
  REQUIRE(http.post("/merchant/join", json{{"first_name", "A"},
                                           {"last_name", "B"},
                                           {"email", "c@example.com"},
                                           {"postcode", "d1 1dd"},
                                           {"callback_url", "http://127.0.0.1:1/never"}})
              .status == 202);
  e2e::Http receiver_http(receiver->url());
  CHECK(e2e::eventually([&] {
    return receiver_http.get("/_calls?path_prefix=/hades/from-merchant").json_body.size() == 1;
  }));
}

TEST_CASE("POST /_callback signs what it is told, or tampers with it on request") {
  auto merchant = e2e::start_mock_merchant();
  e2e::Http http(merchant->url());
  const auto public_key = e2e::read_text(kPublicKeyPath);
  const std::string url = merchant->url() + "/hermes/manual";
  const std::string text = R"({"message_uid":"x","record_uid":"y","barcode":"1"})";

  const auto good =
      http.post("/_callback", json{{"url", url}, {"body_text", text}, {"timestamp", 1700000000}});
  REQUIRE(good.status == 200);
  CHECK(good.json_body["status"] == 200);
  const auto tampered = http.post(
      "/_callback",
      json{{"url", url}, {"body_text", text}, {"timestamp", 1700000000}, {"tamper", true}});
  REQUIRE(tampered.status == 200);
  const auto unsigned_one =
      http.post("/_callback", json{{"url", url}, {"body_text", text}, {"omit_signature", true}});
  REQUIRE(unsigned_one.status == 200);

  const auto calls = http.get("/_calls?path_prefix=/hermes/manual").json_body;
  REQUIRE(calls.size() == 3);
  auto verify = [&](const json& call) {
    const std::string auth = call["headers"].value("authorization", "");
    if (auth.rfind("Signature ", 0) != 0) return false;
    return midas_api::crypto::verify_signature(
               public_key, call.contains("body_text") ? call["body_text"].get<std::string>() : "",
               std::stoll(call["headers"]["x-req-timestamp"].get<std::string>()), auth.substr(10))
        .valid;
  };
  // Bodies that are JSON are recorded parsed; the raw text is what was signed, so re-sign check
  // uses the text the test sent.
  CHECK(midas_api::crypto::verify_signature(public_key, text, 1700000000,
                                            good.json_body["signature"].get<std::string>())
            .valid);
  CHECK(calls[0]["headers"]["authorization"] ==
        "Signature " + good.json_body["signature"].get<std::string>());
  CHECK(calls[1]["headers"]["authorization"] == calls[0]["headers"]["authorization"]);
  CHECK_FALSE(
      midas_api::crypto::verify_signature(public_key, text + " ", 1700000000,
                                          tampered.json_body["signature"].get<std::string>())
          .valid);
  CHECK_FALSE(calls[2]["headers"].contains("authorization"));
  CHECK_FALSE(verify(calls[2]));
  CHECK(http.post("/_callback", json{{"url", url}}).status == 400);
}

TEST_CASE("the Hermes and Hades stubs accept anything and the recorder keeps every call") {
  auto merchant = e2e::start_mock_merchant();
  e2e::Http http(merchant->url());

  CHECK(http.post("/hades/balance", json{{"points", 1}}, {{"transaction", "tid-1"}}).status == 201);
  CHECK(http.post("/hermes/schemes/accounts/7/status", json{{"status", 1}}).status == 200);
  CHECK(http.get("/hermes/schemes/accounts/7/credentials").status == 200);
  CHECK(http.del("/hermes/schemes/accounts/7/credentials").status == 204);
  CHECK(http.post_text("/hades/transactions?x=1&y=two", "not json", "text/plain").status == 201);
  CHECK(http.get("/nowhere").status == 404);
  CHECK(http.get("/_calls").status == 200);  // control endpoints are not recorded

  const auto all = http.get("/_calls").json_body;
  REQUIRE(all.size() == 6);
  CHECK(all[0]["method"] == "POST");
  CHECK(all[0]["path"] == "/hades/balance");
  CHECK(all[0]["body"] == json{{"points", 1}});
  CHECK(all[0]["headers"]["transaction"] == "tid-1");
  CHECK(all[0]["headers"]["content-type"] == "application/json");
  CHECK(all[0]["seq"].get<int>() < all[1]["seq"].get<int>());
  CHECK(all[0]["epoch_ms"].get<std::int64_t>() <= all[1]["epoch_ms"].get<std::int64_t>());
  CHECK(all[0]["time"].get<std::string>().size() == 24);  // 2026-01-01T00:00:00.000Z
  CHECK(all[3]["method"] == "DELETE");
  CHECK(all[4]["body"].is_null());
  CHECK(all[4]["body_text"] == "not json");
  CHECK(all[4]["query"] == json{{"x", "1"}, {"y", "two"}});
  CHECK(all[5]["path"] == "/nowhere");

  const auto hermes = http.get("/_calls?path_prefix=/hermes&method=POST").json_body;
  REQUIRE(hermes.size() == 1);
  CHECK(hermes[0]["path"] == "/hermes/schemes/accounts/7/status");

  CHECK(http.del("/_calls").status == 204);
  CHECK(http.get("/_calls").json_body.empty());
}

TEST_CASE("faults: the next matching requests fail as told, then the merchant recovers") {
  auto merchant = e2e::start_mock_merchant();
  e2e::Http http(merchant->url());
  const auto good = login_body("6332040011111111111", "one", "rg1 1aa");

  SUBCASE("a status, `times` times, only on matching paths") {
    const auto added = http.post("/_faults", json{{"path_prefix", "/merchant/login"},
                                                  {"status", 503},
                                                  {"times", 2},
                                                  {"delay_ms", 0},
                                                  {"drop_connection", false}});
    REQUIRE(added.status == 201);
    CHECK(added.json_body["ids"].size() == 1);
    CHECK(http.get("/_faults").json_body.at(0)["times"] == 2);
    CHECK(http.post("/hades/balance", json::object()).status == 201);  // other path untouched
    const auto first = http.post("/merchant/login", good);
    CHECK(first.status == 503);
    CHECK(first.json_body == json{{"error", "injected fault"}, {"status", 503}});
    CHECK(http.post("/merchant/login", good).status == 503);
    CHECK(http.post("/merchant/login", good).status == 200);
    CHECK(http.get("/_faults").json_body.empty());
    const auto calls = http.get("/_calls?path_prefix=/merchant/login").json_body;
    REQUIRE(calls.size() == 3);
    CHECK(calls[0]["fault"]["status"] == 503);
    CHECK_FALSE(calls[2].contains("fault"));
  }
  SUBCASE("a custom body, a method filter, times -1 until deleted") {
    REQUIRE(http.post("/_faults", json{{"path_prefix", "/hermes/"},
                                       {"method", "PUT"},
                                       {"status", 401},
                                       {"times", -1},
                                       {"body", {{"detail", "nope"}}}})
                .status == 201);
    CHECK(http.post("/hermes/x", json::object()).status == 200);
    for (int i = 0; i < 3; ++i) {
      auto r = e2e::to_reply(
          httplib::Client(merchant->url()).Put("/hermes/x", "{}", "application/json"));
      CHECK(r.status == 401);
      CHECK(r.json_body == json{{"detail", "nope"}});
    }
    CHECK(http.del("/_faults").status == 204);
    CHECK(e2e::to_reply(httplib::Client(merchant->url()).Put("/hermes/x", "{}", "application/json"))
              .status == 200);
  }
  SUBCASE("a list of faults is applied in order") {
    REQUIRE(
        http.post("/_faults", json::array({json{{"path_prefix", "/merchant"}, {"status", 500}},
                                           json{{"path_prefix", "/merchant"}, {"status", 502}}}))
            .status == 201);
    CHECK(http.post("/merchant/login", good).status == 500);
    CHECK(http.post("/merchant/login", good).status == 502);
    CHECK(http.post("/merchant/login", good).status == 200);
  }
  SUBCASE("a delay, then the normal answer (or a status)") {
    REQUIRE(
        http.post("/_faults", json{{"path_prefix", "/merchant/login"}, {"delay_ms", 300}}).status ==
        201);
    auto started = std::chrono::steady_clock::now();
    CHECK(http.post("/merchant/login", good).status == 200);
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds{300});
    REQUIRE(http.post("/_faults",
                      json{{"path_prefix", "/merchant/login"}, {"delay_ms", 200}, {"status", 504}})
                .status == 201);
    started = std::chrono::steady_clock::now();
    CHECK(http.post("/merchant/login", good).status == 504);
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds{200});
  }
  SUBCASE("a delay longer than the client waits is a timeout for the client") {
    REQUIRE(http.post("/_faults", json{{"path_prefix", "/merchant/login"}, {"delay_ms", 1500}})
                .status == 201);
    httplib::Client impatient(merchant->url());
    impatient.set_read_timeout(0, 300000);
    const auto r =
        e2e::to_reply(impatient.Post("/merchant/login", good.dump(), "application/json"));
    CHECK(r.status == 0);
    CHECK(r.error == httplib::to_string(httplib::Error::Read));
  }
  SUBCASE("drop_connection closes the connection without an answer") {
    REQUIRE(
        http.post("/_faults", json{{"path_prefix", "/merchant/join"}, {"drop_connection", true}})
            .status == 201);
    const auto dropped = http.post("/merchant/join", json::object());
    CHECK(dropped.status == 0);
    CHECK(dropped.error == httplib::to_string(httplib::Error::Read));
    const auto normal = http.post("/merchant/join", json::object());  // back to normal
    CHECK(normal.status == 200);
    CHECK(first_code(normal.json_body) == "VALIDATION");
    const auto calls = http.get("/_calls?path_prefix=/merchant/join").json_body;
    REQUIRE(calls.size() == 2);
    CHECK(calls[0]["fault"]["drop_connection"] == true);
  }
  SUBCASE("bad fault definitions are refused with 400 and change nothing") {
    const json bad[] = {json{{"status", 503}},
                        json{{"path_prefix", "/merchant"}},
                        json{{"path_prefix", "/merchant"}, {"status", 99}},
                        json{{"path_prefix", "/merchant"}, {"status", 503}, {"times", 0}},
                        json{{"path_prefix", "/merchant"}, {"delay_ms", -1}},
                        json{{"path_prefix", "/_calls"}, {"status", 500}},
                        json{{"path_prefix", "/merchant"}, {"drop_connection", "yes"}},
                        json::array()};
    for (const auto& b : bad) {
      CAPTURE(b.dump());
      const auto r = http.post("/_faults", b);
      CHECK(r.status == 400);
      CHECK(r.json_body.contains("error"));
    }
    CHECK(http.post_text("/_faults", "{", "application/json").status == 400);
    CHECK(http.get("/_faults").json_body.empty());
  }
}

TEST_CASE("POST /_reset forgets joins, calls, faults and callbacks") {
  auto merchant = e2e::start_mock_merchant({"--callback-delay-ms", "0"});
  e2e::Http http(merchant->url());
  const auto users_before = http.get("/_users").json_body.size();
  REQUIRE(http.post("/merchant/join", json{{"first_name", "A"},
                                           {"last_name", "B"},
                                           {"email", "reset@example.com"},
                                           {"postcode", "d1 1dd"},
                                           {"callback_url", merchant->url() + "/hermes/cb"}})
              .status == 202);
  REQUIRE(e2e::eventually([&] { return http.get("/_callbacks").json_body.size() == 1; }));
  REQUIRE(http.post("/_faults", json{{"path_prefix", "/x"}, {"status", 500}}).status == 201);
  CHECK(http.get("/_users").json_body.size() == users_before + 1);

  CHECK(http.post("/_reset", json::object()).status == 204);
  CHECK(http.get("/_users").json_body.size() == users_before);
  CHECK(http.get("/_calls").json_body.empty());
  CHECK(http.get("/_faults").json_body.empty());
  CHECK(http.get("/_callbacks").json_body.empty());
}

TEST_CASE("bad start-up settings stop the mock merchant with a message") {
  const std::string log = e2e::log_path("mock_merchant_bad_start");
  const std::string bad_users = log + ".users.json";
  {
    std::ofstream out(bad_users);
    out << R"({"users": [{"card_number": "1"}]})";
  }
  CHECK_THROWS_AS(
      e2e::Process({MIDAS_MOCK_MERCHANT_BIN, "--port", "0", "--users", bad_users}, {}, log),
      std::runtime_error);
  CHECK(e2e::read_text(log).find("users: bad entry") != std::string::npos);
  CHECK_THROWS_AS(
      e2e::Process({MIDAS_MOCK_MERCHANT_BIN, "--port", "0", "--private-key", bad_users}, {}, log),
      std::runtime_error);
  CHECK(e2e::read_text(log).find("private key: not a PEM private key") != std::string::npos);
}
