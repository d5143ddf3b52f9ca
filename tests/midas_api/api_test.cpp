// SPDX-License-Identifier: MIT
// midas-api in process: the real routes on a loopback port, driven over HTTP. Mock agents with the
// shipped data files, the Midas error model, request errors, garbage input, the operational
// endpoints and Hermes/Hades publishing against a recording stub.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "api_support.hpp"
#include "crypto/base64.hpp"

using nlohmann::json;
using namespace midas_api;           // NOLINT
using namespace midas_api::testing;  // NOLINT

namespace {

json iceland(const std::string& card, const std::string& last_name, const std::string& postcode) {
  return {{"card_number", card}, {"last_name", last_name}, {"postcode", postcode}};
}

json balance_of(double points, double value, const std::string& value_label,
                const std::string& points_label, std::int64_t id = 1) {
  return {{"points", points},
          {"value", value},
          {"value_label", value_label},
          {"reward_tier", 0},
          {"scheme_account_id", id},
          {"user_set", "1,2"},
          {"points_label", points_label}};
}

json generic_error(int code) {
  std::ifstream in(std::filesystem::path(MIDAS_API_DATA_SOURCE_DIR) / "errors.json");
  const json table = json::parse(in);
  for (const auto& e : table) {
    if (e["code"] == code) return {{"message", e["message"]}, {"code", code}, {"name", e["name"]}};
  }
  FAIL("no error with code " << code << " in errors.json");
  return {};
}

/// A test agent whose behaviour the credentials choose ({"mode": ...}).
class ScriptedAgent final : public Agent {
 public:
  ScriptedAgent(UserInfo user, std::atomic<int>* logins, std::optional<int> limit)
      : user_(std::move(user)), logins_(logins), limit_(limit) {}
  void login() override {
    ++*logins_;
    const std::string mode = user_.credentials.value("mode", "");
    if (mode == "runtime_error") throw std::runtime_error("boom: internal detail");
    if (mode == "throw_int") throw 42;
    if (mode == "end_site_down") throw AgentError(errors::end_site_down);
    if (mode == "specific_message") throw AgentError(errors::general, "Card is frozen.");
    if (mode == "nested") {
      throw AgentError(errors::join, "",
                       std::make_shared<const AgentError>(errors::end_site_down, "merchant down"));
    }
    if (mode == "fail") throw AgentError(errors::status_login_failed);
    if (mode == "delete") throw AgentError(errors::scheme_requested_delete);
  }
  std::optional<Balance> balance() override {
    const std::string mode = user_.credentials.value("mode", "");
    if (mode == "null_balance") return std::nullopt;
    Balance b{.points = Amount{"12345678"},
              .value = Amount{"12345678.00"},
              .value_label = mode == "long_label" ? "£12345678.00" : "£1.00",
              .reward_tier = 2,
              .balance = std::nullopt,
              .vouchers = std::nullopt};
    if (mode == "vouchers") {
      b.balance = json{{"extra", true}};
      b.vouchers = std::vector<Voucher>{Voucher{.state = "issued",
                                                .issue_date = "2024-01-01",
                                                .redeem_date = std::nullopt,
                                                .expiry_date = std::nullopt,
                                                .code = "ABC",
                                                .value = Amount{"5"},
                                                .target_value = std::nullopt,
                                                .conversion_date = std::nullopt}};
    }
    return b;
  }
  std::vector<Transaction> transactions() override { return {}; }
  JoinResult join() override { return {}; }
  JoinResult join_callback(const json&) override { return {}; }
  [[nodiscard]] std::string retry_key_class() const override { return "ScriptedAgent"; }
  [[nodiscard]] std::optional<int> retry_limit() const override { return limit_; }

 private:
  UserInfo user_;
  std::atomic<int>* logins_;
  std::optional<int> limit_;
};

std::atomic<int> g_scripted_logins{0};

/// Registers "scripted" (retry limit 2) before the server starts.
void add_scripted(Services& s) {
  s.agents.add({.slug = "scripted",
                .credential_fields = {"mode"},
                .factory =
                    [](const AgentContext&, UserInfo user) {
                      return std::unique_ptr<Agent>(
                          std::make_unique<ScriptedAgent>(std::move(user), &g_scripted_logins, 2));
                    },
                .context = {.slug = "scripted"}});
}

}  // namespace

TEST_SUITE("midas_api http") {
  TEST_CASE("balance of several iceland-bonus-card-mock users is exact") {
    TestApp app;
    struct Case {
      json creds;
      json expected;
    };
    const std::vector<Case> cases{
        {iceland("6332040066666666666", "six", "rg6 6aa"),
         balance_of(1480.0, 1480.0, "£1480.00", "1480")},
        {iceland("6332040011111111111", "one", "rg1 1aa"), balance_of(20.1, 20.1, "£20.10", "20")},
        {iceland("6332040050607086666", "million", "mp6 0bb"),
         balance_of(123456.0, 123456.0, "£123456.00", "123k")},
        {iceland("6332040050607087777", "smith-s", "mp7 1bb"),
         balance_of(1234567.0, 1234567.0, "£1234567.00", "1M")},
        {iceland("6332040000400000004", "million", "rg6 6aa"),
         balance_of(1234567.89, 1234567.89, "£1234567.89", "1M")},
        {iceland("6332040000000000018", "testusereighteen", "rg0 0aa"),
         balance_of(0.0, 0.0, "£0.00", "0")},
        // last name and postcode are compared case-insensitively
        {iceland("6332040055555555555", "FIVE", "RG5 5AA"),
         balance_of(380.01, 380.01, "£380.01", "380")},
    };
    for (const auto& c : cases) {
      CAPTURE(c.creds.dump());
      auto r = query(app, "iceland-bonus-card-mock", c.creds);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->get_header_value("Content-Type") == "application/json");
      CHECK(body_of(r) == c.expected);
    }
  }

  TEST_CASE("bink_user_id is echoed and user_id stands in for user_set") {
    TestApp app;
    auto r = app.get("/iceland-bonus-card-mock/balance",
                     {{"credentials", enc(iceland("6332040011111111111", "one", "rg1 1aa"))},
                      {"scheme_account_id", "77"},
                      {"user_id", "9"},
                      {"bink_user_id", "5"}});
    REQUIRE(r);
    CHECK(r->status == 200);
    json expected = balance_of(20.1, 20.1, "£20.10", "20", 77);
    expected["user_set"] = "9";
    expected["bink_user_id"] = 5;
    CHECK(body_of(r) == expected);
  }

  TEST_CASE("each special last name raises its Midas error with the generic message") {
    TestApp app;
    const std::vector<std::pair<std::string, int>> cases{{"external_unhandled_error", 439},
                                                         {"account_blocked", 434},
                                                         {"authorisation_expired", 533},
                                                         {"user_doesnt_exist", 444},
                                                         {"non_recoverable_error", 432}};
    for (const auto& [last_name, code] : cases) {
      CAPTURE(last_name);
      auto r = query(app, "iceland-bonus-card-mock",
                     iceland("6332040066666666666", last_name, "rg6 6aa"));
      REQUIRE(r);
      CHECK(r->status == code);
      CHECK(body_of(r) == generic_error(code));
    }
  }

  TEST_CASE("wrong postcode, wrong last name, unknown or missing card: 403 Invalid credentials") {
    TestApp app;
    for (const json& creds : {iceland("6332040066666666666", "six", "rg1 1aa"),
                              iceland("6332040066666666666", "seven", "rg6 6aa"),
                              iceland("6332049999999999999", "six", "rg6 6aa"),
                              json{{"last_name", "six"}, {"postcode", "rg6 6aa"}}}) {
      CAPTURE(creds.dump());
      auto r = query(app, "iceland-bonus-card-mock", creds);
      REQUIRE(r);
      CHECK(r->status == 403);
      CHECK(body_of(r) == generic_error(403));
    }
  }

  TEST_CASE("a pre-registered card is 406") {
    TestApp app;
    auto r =
        query(app, "iceland-bonus-card-mock", iceland("6332040031231230000", "six", "rg6 6aa"));
    REQUIRE(r);
    CHECK(r->status == 406);
    CHECK(body_of(r) == generic_error(406));
  }

  TEST_CASE("credentials with every join field log in as user 000000") {
    TestApp app;
    json creds = {{"title", "Mr"},         {"first_name", "Ann"},  {"last_name", "Other"},
                  {"phone", "0123"},       {"email", "new@x.com"}, {"date_of_birth", "2000-01-01"},
                  {"postcode", "ab1 2cd"}, {"county", "Kent"},     {"town_city", "Town"},
                  {"address_1", "1 Road"}, {"address_2", "Flat 2"}};
    auto r = query(app, "iceland-bonus-card-mock", creds);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(body_of(r) == balance_of(0.0, 0.0, "£0.00", "0"));
  }

  TEST_CASE("harvey-nichols-mock logs in by email and password") {
    TestApp app;
    auto ok = query(app, "harvey-nichols-mock",
                    {{"email", "ONE@testbink.com"}, {"password", "Password01"}});
    REQUIRE(ok);
    CHECK(ok->status == 200);
    CHECK(body_of(ok) == json{{"points", 20.1},
                              {"value", 0.0},
                              {"value_label", ""},
                              {"reward_tier", 1},
                              {"scheme_account_id", 1},
                              {"user_set", "1,2"},
                              {"points_label", "20"}});
    auto bad = query(app, "harvey-nichols-mock",
                     {{"email", "one@testbink.com"}, {"password", "password01"}});
    REQUIRE(bad);
    CHECK(bad->status == 403);
    auto down = query(app, "harvey-nichols-mock",
                      {{"email", "endsitedown@testbink.com"}, {"password", "x"}});
    REQUIRE(down);
    CHECK(down->status == 530);
    CHECK(body_of(down) == generic_error(530));
  }

  TEST_CASE("performance-mock and any performance-mock* slug answer a random small balance") {
    TestApp app;
    for (const char* slug : {"performance-mock", "performance-mock-7"}) {
      auto r = query(app, slug, {{"card_number", "123"}});
      REQUIRE(r);
      CHECK(r->status == 200);
      json b = body_of(r);
      CHECK(b["points"].get<double>() >= 1);
      CHECK(b["points"].get<double>() <= 50);
      CHECK(b["points_label"] == std::to_string(b["points"].get<int>()));
    }
    auto pre = query(app, "performance-mock", {{"card_number", "0123"}});
    REQUIRE(pre);
    CHECK(pre->status == 406);
  }

  TEST_CASE("transactions: hashes, dates and null for none") {
    TestApp app;
    auto r = query(app, "iceland-bonus-card-mock", iceland("6332040011111111111", "one", "rg1 1aa"),
                   1, "transactions");
    REQUIRE(r);
    CHECK(r->status == 200);
    // vectors.json: "2018-07-01T14:24:15+00:00Test transaction: 1 item20.7110" for account 1.
    CHECK(body_of(r) == json::array({{{"date", "2018-07-01 14:24:15+00:00"},
                                      {"description", "Test transaction: 1 item"},
                                      {"points", 20.71},
                                      {"hash", "3d5521d21b0525ce51dfa19a41adc20e"},
                                      {"scheme_account_id", 1},
                                      {"user_set", "1,2"}}}));

    auto six = query(app, "iceland-bonus-card-mock",
                     iceland("6332040066666666666", "six", "rg6 6aa"), 5, "transactions");
    REQUIRE(six);
    json list = body_of(six);
    REQUIRE(list.is_array());
    CHECK(list.size() == 6);
    std::set<std::string> hashes;
    for (const auto& t : list) hashes.insert(t["hash"].get<std::string>());
    CHECK(hashes.size() == 6);
    CHECK(list[1]["points"] == -100.01);
    CHECK(list[5]["date"] == "2018-09-05 11:30:50+00:00");

    auto none = query(app, "iceland-bonus-card-mock",
                      iceland("6332040000000000000", "zero", "rg0 0aa"), 1, "transactions");
    REQUIRE(none);
    CHECK(none->status == 200);
    CHECK(none->body == "null");
  }

  TEST_CASE("account_overview holds the balance and the transactions") {
    TestApp app;
    auto r = query(app, "iceland-bonus-card-mock", iceland("6332040011111111111", "one", "rg1 1aa"),
                   1, "account_overview");
    REQUIRE(r);
    CHECK(r->status == 200);
    json o = body_of(r);
    CHECK(o["balance"] == balance_of(20.1, 20.1, "£20.10", "20"));
    REQUIRE(o["transactions"].is_array());
    CHECK(o["transactions"].size() == 1);
    CHECK(o["transactions"][0]["hash"] == "3d5521d21b0525ce51dfa19a41adc20e");
  }

  TEST_CASE("an unknown slug is 404 No such agent, on every endpoint") {
    TestApp app;
    for (const char* endpoint : {"balance", "transactions", "account_overview"}) {
      auto r = query(app, "no-such-scheme", {{"x", 1}}, 1, endpoint);
      REQUIRE(r);
      CHECK(r->status == 404);
      CHECK(body_of(r) == json{{"message", "No such agent"}});
    }
  }

  TEST_CASE("missing or invalid parameters are 400 {message}") {
    TestApp app;
    const std::string c = enc(iceland("6332040066666666666", "six", "rg6 6aa"));
    struct Case {
      httplib::Params params;
      std::string message;
    };
    const std::vector<Case> cases{
        {{{"scheme_account_id", "1"}, {"user_set", "1"}},
         "Missing required parameter \"credentials\"."},
        {{{"credentials", c}, {"user_set", "1"}},
         "Missing required parameter \"scheme_account_id\"."},
        {{{"credentials", c}, {"scheme_account_id", "abc"}, {"user_set", "1"}},
         "Parameter \"scheme_account_id\" must be an integer."},
        {{{"credentials", c}, {"scheme_account_id", "99999999999999999999"}, {"user_set", "1"}},
         "Parameter \"scheme_account_id\" must be an integer."},
        {{{"credentials", c}, {"scheme_account_id", "1"}},
         "Please provide either \"user_set\" or \"user_id\" parameters"},
        {{{"credentials", c}, {"scheme_account_id", "1"}, {"user_id", "x"}},
         "Parameter \"user_id\" must be an integer."},
        {{{"credentials", c}, {"scheme_account_id", "1"}, {"user_set", "1"}, {"journey_type", "9"}},
         "Parameter \"journey_type\" must be 0 (join), 1 (link), 2 (add), 3 (update) or 4 "
         "(removed)."},
        {{{"credentials", c}, {"scheme_account_id", "1"}, {"user_set", "1"}, {"status", "x"}},
         "Parameter \"status\" must be an integer."},
    };
    for (const auto& k : cases) {
      CAPTURE(k.message);
      auto r = app.get("/iceland-bonus-card-mock/balance", k.params);
      REQUIRE(r);
      CHECK(r->status == 400);
      CHECK(body_of(r) == json{{"message", k.message}});
    }
  }

  TEST_CASE("garbage credentials are 400 with a message naming the problem, never 5xx") {
    TestApp app;
    auto not_json = crypto::encrypt_text("hello, not json", kTestKey);
    auto array = crypto::encrypt_text("[1,2]", kTestKey);
    auto latin1 = crypto::encrypt_text("{\"last_name\": \"Zo\xeb\"}", kTestKey);
    REQUIRE(not_json.has_value());
    REQUIRE(array.has_value());
    REQUIRE(latin1.has_value());
    const std::string good = enc(iceland("6332040066666666666", "six", "rg6 6aa"));
    struct Case {
      std::string credentials;
      std::string needle;  // in the message
    };
    const std::vector<Case> cases{
        {"!!!!", "base64"},
        {"abc", "base64"},
        {crypto::base64_encode("sixteen byte iv!short"), "too short"},
        {good.substr(0, good.size() - 8) + "AAAAAAA=", ""},  // tampered tail
        {crypto::base64_encode(std::string(16, 'i') + std::string(33, 'c')), ""},
        {*not_json, "JSON"},
        {*array, "object"},
        {*latin1, "UTF-8"},
        {enc(iceland("6332040066666666666", "six", "rg6 6aa"), "another-key"), ""},
        {std::string("\xff\xfe\x80", 3), "base64"},
    };
    for (const auto& k : cases) {
      CAPTURE(k.credentials);
      auto r =
          app.get("/iceland-bonus-card-mock/balance",
                  {{"credentials", k.credentials}, {"scheme_account_id", "1"}, {"user_set", "1"}});
      REQUIRE(r);
      CHECK(r->status == 400);
      json b = body_of(r);
      REQUIRE(b.is_object());
      CHECK(b.size() == 1);
      REQUIRE(b["message"].is_string());
      CHECK(b["message"].get<std::string>().find("credentials") != std::string::npos);
      CHECK(b["message"].get<std::string>().find(k.needle) != std::string::npos);
    }
  }

  TEST_CASE("a '+' in the credentials that arrives as a space still decrypts") {
    TestApp app;
    // Find credentials with a '+' (random IVs: a few tries suffice).
    std::string c;
    for (int i = 0; i < 200 && c.find('+') == std::string::npos; ++i) {
      c = enc(iceland("6332040066666666666", "six", "rg6 6aa"));
    }
    REQUIRE(c.find('+') != std::string::npos);
    // Unescaped '+' in a query string is a space once decoded; '=' and '/' are escaped.
    std::string raw;
    for (char ch : c) {
      raw += ch == '=' ? std::string("%3D") : ch == '/' ? std::string("%2F") : std::string(1, ch);
    }
    auto cli = app.client();
    auto r = cli.Get(
        "/iceland-bonus-card-mock/balance?scheme_account_id=1&user_set=1&credentials=" + raw);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(body_of(r)["points"] == 1480.0);
  }

  TEST_CASE("a 10 MB query string is 414 with a JSON body") {
    TestApp app;
    auto cli = app.client();
    const std::string huge(10 * 1024 * 1024, 'A');
    auto r = cli.Get(
        "/iceland-bonus-card-mock/balance?scheme_account_id=1&user_set=1&credentials=" + huge);
    REQUIRE(r);
    CHECK(r->status == 414);
    CHECK(body_of(r) == json{{"message", "Request URI too long."}});
    // The server still serves.
    auto ok = app.get("/healthz");
    REQUIRE(ok);
    CHECK(ok->status == 200);
  }

  TEST_CASE("a body over 1 MiB is 413 with a JSON body") {
    TestApp app;
    auto cli = app.client();
    const std::string big(2 * 1024 * 1024, 'x');
    auto r = cli.Post("/agent_questions", "scheme_slug=performance-mock&a=" + big,
                      "application/x-www-form-urlencoded");
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(body_of(r) == json{{"message", "Payload too large."}});
  }

  TEST_CASE("unknown routes and methods answer JSON") {
    TestApp app;
    auto cli = app.client();
    auto r = cli.Get("/nothing/here/at/all");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(body_of(r) == json{{"message", "Not found."}});
    auto post = cli.Post("/iceland-bonus-card-mock/balance", "x", "text/plain");
    REQUIRE(post);
    CHECK(post->status == 404);
    CHECK(body_of(post).is_object());
  }

  TEST_CASE("agent_questions echoes the fields but scheme_slug") {
    TestApp app;
    auto cli = app.client();
    auto form = cli.Post("/agent_questions", "scheme_slug=iceland-bonus-card-mock&q1=a%20b&q2=2",
                         "application/x-www-form-urlencoded");
    REQUIRE(form);
    CHECK(form->status == 200);
    CHECK(body_of(form) == json{{"q1", "a b"}, {"q2", "2"}});

    httplib::MultipartFormDataItems items{{"scheme_slug", "harvey-nichols-mock", "", ""},
                                          {"email", "x@y.z", "", ""}};
    auto multi = cli.Post("/agent_questions", items);
    REQUIRE(multi);
    CHECK(multi->status == 200);
    CHECK(body_of(multi) == json{{"email", "x@y.z"}});

    auto missing = cli.Post("/agent_questions", "q1=a", "application/x-www-form-urlencoded");
    REQUIRE(missing);
    CHECK(missing->status == 400);
    CHECK(body_of(missing) == json{{"message", "Missing required field \"scheme_slug\"."}});

    auto unknown =
        cli.Post("/agent_questions", "scheme_slug=nope&q=1", "application/x-www-form-urlencoded");
    REQUIRE(unknown);
    CHECK(unknown->status == 404);
    CHECK(body_of(unknown) == json{{"message", "No such agent"}});
  }

  TEST_CASE("non-UTF-8 bodies are 400 with a JSON body") {
    TestApp app;
    auto cli = app.client();
    auto form = cli.Post("/agent_questions", "scheme_slug=performance-mock&q=%FF%FE",
                         "application/x-www-form-urlencoded");
    REQUIRE(form);
    CHECK(form->status == 400);
    CHECK(body_of(form) == json{{"message", "Form fields must be UTF-8 text."}});
    auto js = cli.Post("/agent_questions", std::string("{\"scheme_slug\": \"\xff\"}"),
                       "application/json");
    REQUIRE(js);
    CHECK(js->status == 400);
    CHECK(body_of(js).is_object());
    auto raw = cli.Post("/agent_questions", std::string("\xff\xfe\x00\x01", 4),
                        "application/octet-stream");
    REQUIRE(raw);
    CHECK(raw->status == 400);
    CHECK(body_of(raw).is_object());
  }

  TEST_CASE("unexpected failures are 520 Unknown error JSON, Midas codes are statuses") {
    TestApp app(test_config(), add_scripted);
    struct Case {
      std::string mode;
      int status;
      json body;
    };
    json specific = generic_error(439);
    specific["message"] = "Card is frozen.";
    const std::vector<Case> cases{
        {"runtime_error", 520, generic_error(520)}, {"throw_int", 520, generic_error(520)},
        {"end_site_down", 530, generic_error(530)}, {"specific_message", 439, specific},
        {"nested", 538, generic_error(538)},
    };
    std::int64_t account = 1000;  // one account each: the scripted agent's retry limit is 2
    for (const auto& k : cases) {
      CAPTURE(k.mode);
      auto r = query(app, "scripted", {{"mode", k.mode}}, account++);
      REQUIRE(r);
      CHECK(r->status == k.status);
      CHECK(body_of(r) == k.body);
    }
    // The internal detail of an unexpected exception is logged, not sent.
    CHECK(app.log_text().find("boom: internal detail") != std::string::npos);
  }

  TEST_CASE("non-standard status codes go out on the wire with a reason phrase") {
    TestApp app(test_config(), add_scripted);
    auto r = query(app, "scripted", {{"mode", "end_site_down"}}, 1001);
    REQUIRE(r);
    CHECK(r->status == 530);
    CHECK_FALSE(r->reason.empty());
  }

  TEST_CASE("value labels longer than 11 characters become Reward, vouchers and balance are kept") {
    TestApp app(test_config(), add_scripted);
    auto r = query(app, "scripted", {{"mode", "long_label"}}, 3);
    REQUIRE(r);
    CHECK(r->status == 200);
    json b = body_of(r);
    CHECK(b["value_label"] == "Reward");
    CHECK(b["points_label"] == "12M");
    CHECK(b["reward_tier"] == 2);
    CHECK_FALSE(b.contains("vouchers"));
    CHECK_FALSE(b.contains("balance"));

    auto v = query(app, "scripted", {{"mode", "vouchers"}}, 3);
    REQUIRE(v);
    json vb = body_of(v);
    CHECK(vb["balance"] == json{{"extra", true}});
    CHECK(vb["vouchers"] == json::array({{{"state", "issued"},
                                          {"issue_date", "2024-01-01"},
                                          {"code", "ABC"},
                                          {"value", 5.0}}}));

    auto null = query(app, "scripted", {{"mode", "null_balance"}}, 3);
    REQUIRE(null);
    CHECK(null->status == 200);
    CHECK(null->body == "null");
  }

  TEST_CASE("login retry limit: at the agent's limit 429 without calling the merchant") {
    TestApp app(test_config(), add_scripted);
    const int before = g_scripted_logins.load();
    for (int i = 0; i < 2; ++i) {
      auto r = query(app, "scripted", {{"mode", "fail"}}, 555);
      REQUIRE(r);
      CHECK(r->status == 403);
    }
    CHECK(g_scripted_logins.load() == before + 2);
    auto limited = query(app, "scripted", {{"mode", "ok"}}, 555);
    REQUIRE(limited);
    CHECK(limited->status == 429);
    CHECK(body_of(limited) == generic_error(429));
    CHECK(g_scripted_logins.load() == before + 2);
    // Another scheme account is not affected.
    auto other = query(app, "scripted", {{"mode", "ok"}}, 556);
    REQUIRE(other);
    CHECK(other->status == 200);
    // The mock agents have no limit.
    for (int i = 0; i < 8; ++i) {
      auto r = query(app, "iceland-bonus-card-mock", iceland("6332040066666666666", "x", "y"), 557);
      REQUIRE(r);
      CHECK(r->status == 403);
    }
  }

  TEST_CASE("error_reference is complete against errors.json") {
    TestApp app;
    auto r = app.get("/error_reference");
    REQUIRE(r);
    CHECK(r->status == 200);
    json ref = body_of(r);
    std::ifstream in(std::filesystem::path(MIDAS_API_DATA_SOURCE_DIR) / "errors.json");
    const json table = json::parse(in);
    REQUIRE(table.is_array());
    CHECK(ref.size() == table.size());
    for (const auto& e : table) {
      const std::string cls = e["class"];
      CAPTURE(cls);
      REQUIRE(ref.contains(cls));
      CHECK(ref[cls] == json{{"code", e["code"]}, {"message", e["message"]}, {"name", e["name"]}});
    }
    CHECK(ref["StatusLoginFailedError"]["code"] == 403);
  }

  TEST_CASE("agents lists every slug with its credential fields") {
    TestApp app;
    auto r = app.get("/agents");
    REQUIRE(r);
    CHECK(r->status == 200);
    json a = body_of(r);
    CHECK(a["iceland-bonus-card-mock"] == json{"card_number", "last_name", "postcode"});
    CHECK(a["harvey-nichols-mock"] == json{"email", "password"});
    CHECK(a["performance-mock"] == json::array());
    CHECK(a.contains("iceland-bonus-card"));
  }

  TEST_CASE("iceland-bonus-card without a MERCHANT_CONFIG entry answers 536 Configuration error") {
    TestApp app;
    auto r = query(app, "iceland-bonus-card", iceland("6332040066666666666", "six", "rg6 6aa"));
    REQUIRE(r);
    CHECK(r->status == 536);
    json b = body_of(r);
    CHECK(b["code"] == 536);
    CHECK(b["name"] == "Configuration error");
    CHECK(app.log_text().find("no MERCHANT_CONFIG entry for iceland-bonus-card") !=
          std::string::npos);
  }

  TEST_CASE("start-up stops on an unusable backend URL or data directory, naming the setting") {
    Logger quiet(Level::error, true, [](std::string_view) {});
    for (const char* url : {"bogus", "ftp://x", "postgresql://"}) {
      CAPTURE(url);
      Config c = test_config();
      c.backend_url = url;
      try {
        (void)build_services(c, quiet);
        FAIL("start-up should have failed");
      } catch (const ConfigError& e) {
        CHECK(e.setting() == "MIDAS_BACKEND_URL");
      }
    }
    Config c = test_config();
    c.data_dir = "/no/such/dir";
    CHECK_THROWS_AS((void)build_services(c, quiet), StartupError);
  }

  TEST_CASE("finished tasks are pruned after TASK_RETENTION_SECONDS; unfinished ones are kept") {
    std::string log;
    std::mutex log_mutex;
    Logger logger(Level::info, true, [&](std::string_view line) {
      const std::lock_guard lock(log_mutex);
      log += line;
    });
    Config c = test_config();
    c.worker_concurrency = 0;
    c.task_retention_seconds = 1;
    auto s = build_services(c, logger);
    auto& q = *s->queue;
    const auto done = q.enqueue({.type = "attempt-join", .queue = "midas-retry"}).value().id;
    const auto waiting =
        q.enqueue({.type = "attempt-join", .queue = "midas-retry", .delay = std::chrono::hours{1}})
            .value()
            .id;
    auto claimed = q.claim({{"midas-retry"}, 1, "w", std::chrono::seconds{30}}).value();
    REQUIRE(claimed.size() == 1);
    midas::Settlement ok{.status = midas::TaskStatus::succeeded};
    ok.record.attempt = 1;
    ok.record.decision = "succeeded";
    REQUIRE(q.settle(claimed[0].lease, ok));
    s->start_pruner();
    // Pruned once a second old, by a pruner that looks every second.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (q.get(done) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    CHECK(q.get(done).error() == midas::errc::task_not_found);
    CHECK(q.get(waiting).value().status == midas::TaskStatus::pending);
    s->stop_worker();
    const std::lock_guard lock(log_mutex);
    CHECK(log.find("pruned finished tasks") != std::string::npos);
  }

  TEST_CASE("healthz and readyz") {
    TestApp app;
    auto h = app.get("/healthz");
    REQUIRE(h);
    CHECK(h->status == 200);
    CHECK(h->body == "\"\"");
    auto ready = app.get("/readyz");
    REQUIRE(ready);
    CHECK(ready->status == 200);
    CHECK(body_of(ready) == json{{"status", "ready"}});
  }

  TEST_CASE("metrics: Prometheus text with requests, latency, logins and queue depth") {
    TestApp app;
    (void)query(app, "iceland-bonus-card-mock", iceland("6332040066666666666", "six", "rg6 6aa"));
    (void)query(app, "iceland-bonus-card-mock", iceland("6332040066666666666", "six", "rg0 0aa"));
    (void)query(app, "not-an-agent", {{"a", 1}});
    (void)app.get("/definitely/not/a/route");
    auto r = app.get("/metrics");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
    const std::string m = r->body;
    CAPTURE(m);
    CHECK(m.find("# TYPE midas_api_requests_total counter") != std::string::npos);
    CHECK(
        m.find(
            R"(midas_api_requests_total{slug="iceland-bonus-card-mock",endpoint="balance",status="200"} 1)") !=
        std::string::npos);
    CHECK(
        m.find(
            R"(midas_api_requests_total{slug="iceland-bonus-card-mock",endpoint="balance",status="403"} 1)") !=
        std::string::npos);
    CHECK(m.find(R"(midas_api_requests_total{slug="unknown",endpoint="balance",status="404"} 1)") !=
          std::string::npos);
    CHECK(m.find(R"(midas_api_requests_total{slug="",endpoint="unmatched",status="404"} 1)") !=
          std::string::npos);
    CHECK(m.find("# TYPE midas_api_request_duration_seconds histogram") != std::string::npos);
    CHECK(
        m.find(
            R"(midas_api_request_duration_seconds_bucket{slug="iceland-bonus-card-mock",endpoint="balance",status="200",le="+Inf"} 1)") !=
        std::string::npos);
    CHECK(m.find(R"(midas_api_login_success_total{slug="iceland-bonus-card-mock"} 1)") !=
          std::string::npos);
    CHECK(m.find(R"(midas_api_login_failure_total{slug="iceland-bonus-card-mock",code="403"} 1)") !=
          std::string::npos);
    CHECK(m.find("# TYPE midas_api_tasks_total counter") != std::string::npos);
    CHECK(m.find("# TYPE midas_api_queue_tasks gauge") != std::string::npos);
    CHECK(m.find("midas_api_backend_up 1") != std::string::npos);
    CHECK(m.find("midas_api_publish_queue_depth 0") != std::string::npos);
    // Every line is a comment or `name{labels} value`.
    const std::regex sample(
        R"re(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$)re");
    std::istringstream lines(m);
    std::string line;
    int samples = 0;
    while (std::getline(lines, line)) {
      if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
      CAPTURE(line);
      CHECK(std::regex_match(line, sample));
      ++samples;
    }
    CHECK(samples > 20);
  }

  TEST_CASE("credentials never reach the log") {
    TestApp app;
    const std::string c = enc(iceland("6332040066666666666", "six", "rg6 6aa"));
    auto r = app.get("/iceland-bonus-card-mock/balance",
                     {{"credentials", c}, {"scheme_account_id", "1"}, {"user_set", "1"}});
    REQUIRE(r);
    CHECK(r->status == 200);
    auto bad =
        query(app, "iceland-bonus-card-mock", iceland("6332040066666666666", "secretname", "x"));
    REQUIRE(bad);
    // The access log line is written after the answer: wait for it.
    std::string log = app.log_text();
    for (int i = 0; i < 200 && log.find("secretname") == std::string::npos &&
                    log.find(R"("status":403)") == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
      log = app.log_text();
    }
    CHECK(log.find("/iceland-bonus-card-mock/balance") != std::string::npos);
    CHECK(log.find(R"("status":403)") != std::string::npos);
    CHECK(log.find(c.substr(0, 24)) == std::string::npos);
    CHECK(log.find("6332040066666666666") == std::string::npos);
    CHECK(log.find("secretname") == std::string::npos);
  }
}

TEST_SUITE("midas_api publishing") {
  TEST_CASE("a balance publishes to Hades and Hermes status 1, an error publishes its code") {
    HermesStub stub;
    Config c = test_config();
    c.hermes_url = stub.url("/hermes");
    c.hades_url = stub.url("/hades/");
    TestApp app(c);
    auto r = app.get("/iceland-bonus-card-mock/balance",
                     {{"credentials", enc(iceland("6332040011111111111", "one", "rg1 1aa"))},
                      {"scheme_account_id", "42"},
                      {"user_set", "1"}},
                     {{"transaction", "tid-123"}});
    REQUIRE(r);
    CHECK(r->status == 200);
    REQUIRE(app.services().publisher->wait_idle(std::chrono::seconds{10}));

    auto balance = stub.calls_to("/hades/balance", "POST");
    REQUIRE(balance.size() == 1);
    json expected_balance = balance_of(20.1, 20.1, "£20.10", "20", 42);
    expected_balance["user_set"] = "1";
    CHECK(json::parse(balance[0].body) == expected_balance);
    CHECK(balance[0].transaction == "tid-123");

    auto txs = stub.calls_to("/hades/transactions", "POST");
    REQUIRE(txs.size() == 1);
    CHECK(json::parse(txs[0].body).size() == 1);

    auto status = stub.calls_to("/hermes/schemes/accounts/42/status", "POST");
    REQUIRE(status.size() == 1);
    json s = json::parse(status[0].body);
    CHECK(s["status"] == 1);
    CHECK(s["user_info"]["scheme_account_id"] == 42);
    CHECK_FALSE(s["user_info"].contains("credentials"));

    auto creds = stub.calls_to("/hermes/schemes/accounts/42/credentials", "PUT");
    REQUIRE(creds.size() == 1);
    CHECK(json::parse(creds[0].body) ==
          json{{"merchant_identifier", "2900001"}, {"barcode", "6332040011111111111"}});

    auto err = query(app, "iceland-bonus-card-mock",
                     iceland("6332040011111111111", "account_blocked", "rg1 1aa"), 43);
    REQUIRE(err);
    CHECK(err->status == 434);
    REQUIRE(app.services().publisher->wait_idle(std::chrono::seconds{10}));
    auto err_status = stub.calls_to("/hermes/schemes/accounts/43/status");
    REQUIRE(err_status.size() == 1);
    CHECK(json::parse(err_status[0].body)["status"] == 434);

    auto unknown = query(app, "not-a-scheme", {{"a", 1}}, 44);
    REQUIRE(unknown);
    CHECK(unknown->status == 404);
    REQUIRE(app.services().publisher->wait_idle(std::chrono::seconds{10}));
    auto wallet = stub.calls_to("/hermes/schemes/accounts/44/status");
    REQUIRE(wallet.size() == 1);
    CHECK(json::parse(wallet[0].body)["status"] == 10);
    CHECK(app.services().metrics.counter_value("midas_api_publish_total", {"hermes", "sent"}) >= 4);
  }

  TEST_CASE("a slow Hermes never slows a balance, a full publish queue drops and counts") {
    HermesStub slow(200, std::chrono::milliseconds{1500});
    Config c = test_config();
    c.hermes_url = slow.url("/hermes");
    c.hades_url = slow.url("/hades");
    c.publish_queue_capacity = 3;
    TestApp app(c);
    for (int i = 0; i < 5; ++i) {
      const auto start = std::chrono::steady_clock::now();
      auto r = query(app, "iceland-bonus-card-mock",
                     iceland("6332040066666666666", "six", "rg6 6aa"), 100 + i);
      const auto elapsed = std::chrono::steady_clock::now() - start;
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(elapsed < std::chrono::milliseconds{700});
    }
    CHECK(
        app.services().metrics.counter_value("midas_api_publish_total", {"hermes", "dropped"}) +
            app.services().metrics.counter_value("midas_api_publish_total", {"hades", "dropped"}) >
        0);
    CHECK(app.log_text().find("calls dropped") != std::string::npos);
  }

  TEST_CASE("a failing Hermes is logged and counted, and the balance still answers") {
    HermesStub failing(503);
    Config c = test_config();
    c.hermes_url = failing.url("/hermes");
    TestApp app(c);
    auto r =
        query(app, "iceland-bonus-card-mock", iceland("6332040066666666666", "six", "rg6 6aa"));
    REQUIRE(r);
    CHECK(r->status == 200);
    REQUIRE(app.services().publisher->wait_idle(std::chrono::seconds{10}));
    CHECK(app.services().metrics.counter_value("midas_api_publish_total", {"hermes", "failed"}) >=
          1);
    CHECK(app.log_text().find("publish answered with an error status") != std::string::npos);

    Config down = test_config();
    down.hermes_url = "http://127.0.0.1:1/hermes";  // nothing listens on port 1
    TestApp app2(down);
    auto r2 =
        query(app2, "iceland-bonus-card-mock", iceland("6332040066666666666", "six", "rg6 6aa"));
    REQUIRE(r2);
    CHECK(r2->status == 200);
    REQUIRE(app2.services().publisher->wait_idle(std::chrono::seconds{10}));
    CHECK(app2.services().metrics.counter_value("midas_api_publish_total", {"hermes", "failed"}) >=
          1);
  }
}
