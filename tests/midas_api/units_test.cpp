// SPDX-License-Identifier: MIT
// midas-api units: configuration, the login retry limit, metrics text, logging, the publisher.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "agents/login_retry.hpp"
#include "config.hpp"
#include "hermes/publisher.hpp"
#include "logging.hpp"
#include "metrics.hpp"

using nlohmann::json;
using namespace midas_api;  // NOLINT

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

/// The setting a ConfigError names, or "" when load_config succeeds.
std::string failing_setting(std::map<std::string, std::string> vars) {
  try {
    (void)load_config(env_of(std::move(vars)));
    return "";
  } catch (const ConfigError& e) {
    return e.setting();
  }
}

std::filesystem::path temp_file(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() /
           ("midas_api_units_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}

class CountingAgent final : public Agent {
 public:
  explicit CountingAgent(std::optional<int> limit) : limit_(limit) {}
  void login() override {
    ++calls;
    if (fail_with) throw AgentError(*fail_with);
    if (throw_other) throw std::runtime_error("other");
  }
  std::optional<Balance> balance() override { return std::nullopt; }
  std::vector<Transaction> transactions() override { return {}; }
  JoinResult join() override { return {}; }
  JoinResult join_callback(const json&) override { return {}; }
  [[nodiscard]] std::string retry_key_class() const override { return "Counting"; }
  [[nodiscard]] std::optional<int> retry_limit() const override { return limit_; }

  int calls = 0;
  std::optional<ErrorKind> fail_with{};
  bool throw_other = false;

 private:
  std::optional<int> limit_;
};

}  // namespace

TEST_SUITE("midas_api units") {
  TEST_CASE("configuration: defaults, and a missing or invalid setting is named") {
    Config c = load_config(env_of({{"AES_KEY", "k"}}));
    CHECK(c.aes_key == "k");
    CHECK(c.backend_url == "memory://");
    CHECK(c.host == "0.0.0.0");
    CHECK(c.port == 8000);
    CHECK(c.log_json);
    CHECK(c.retry_backoff_base == 3);
    CHECK(c.retry_unit_seconds == 60);
    CHECK(c.max_retry_count == 3);
    CHECK(c.hermes_url.empty());

    Config d = load_config(env_of({{"AES_KEY", "k"},
                                   {"DEV_PORT", "0"},
                                   {"LOG_JSON", "false"},
                                   {"LOG_LEVEL", "WARNING"},
                                   {"RETRY_UNIT_SECONDS", "0.05"},
                                   {"HERMES_URL", "http://127.0.0.1:9/hermes"},
                                   {"MIDAS_BACKEND_URL", "redis://localhost:6379"}}));
    CHECK(d.port == 0);
    CHECK_FALSE(d.log_json);
    CHECK(d.log_level == Level::warning);
    CHECK(d.retry_unit_seconds == doctest::Approx(0.05));
    CHECK(d.hermes_url == "http://127.0.0.1:9/hermes");
    CHECK(d.backend_url == "redis://localhost:6379");

    CHECK(failing_setting({}) == "AES_KEY");
    CHECK(failing_setting({{"AES_KEY", ""}}) == "AES_KEY");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"DEV_PORT", "80x"}}) == "DEV_PORT");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"DEV_PORT", "70000"}}) == "DEV_PORT");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"LOG_JSON", "maybe"}}) == "LOG_JSON");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"LOG_LEVEL", "loud"}}) == "LOG_LEVEL");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"HERMES_URL", "ftp://x"}}) == "HERMES_URL");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"HADES_URL", "nope"}}) == "HADES_URL");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"REDIS_URL", "http://x"}}) == "REDIS_URL");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"RETRY_UNIT_SECONDS", "-1"}}) ==
          "RETRY_UNIT_SECONDS");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"MAX_RETRY_COUNT", "three"}}) == "MAX_RETRY_COUNT");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"WORKER_CONCURRENCY", "-1"}}) ==
          "WORKER_CONCURRENCY");
    CHECK(failing_setting({{"AES_KEY", "k"}, {"MERCHANT_CONFIG", "/no/such/file.json"}}) ==
          "MERCHANT_CONFIG");
    CHECK(failing_setting({{"AES_KEY_FILE", "/no/such/key"}}) == "AES_KEY_FILE");

    auto key = temp_file("key", "from-a-file\n");
    CHECK(load_config(env_of({{"AES_KEY_FILE", key.string()}})).aes_key == "from-a-file");
    std::filesystem::remove(key);
  }

  TEST_CASE("merchant config file: entries, defaults and errors naming the key") {
    auto pem = temp_file("pub.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    auto good = temp_file("good.json", json{{"iceland-bonus-card",
                                             {{"merchant_url", "http://127.0.0.1:9100/merchant"},
                                              {"security_type", "rsa"},
                                              {"public_key_file", pem.filename().string()},
                                              {"timeout_seconds", 0.5},
                                              {"max_retries", 1},
                                              {"api_key", "k"}}}}
                                           .dump());
    auto m = load_merchant_config(good);
    REQUIRE(m.contains("iceland-bonus-card"));
    const MerchantConfig& e = m.at("iceland-bonus-card");
    CHECK(e.merchant_url == "http://127.0.0.1:9100/merchant");
    CHECK(e.security_type == "rsa");
    CHECK(e.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    CHECK(e.extra["api_key"] == "k");
    HttpSettings h = http_settings_of(e);
    CHECK(h.timeout == std::chrono::milliseconds{500});
    CHECK(h.max_retries == 1);
    CHECK(h.backoff_factor == std::chrono::milliseconds{300});

    auto error_of = [](const std::string& text) -> std::string {
      auto f = temp_file("bad.json", text);
      try {
        (void)load_merchant_config(f);
        return "";
      } catch (const ConfigError& err) {
        return err.setting();
      }
    };
    CHECK(error_of("{not json") == "MERCHANT_CONFIG");
    CHECK(error_of("[]") == "MERCHANT_CONFIG");
    CHECK(error_of(R"({"x": {}})") == "MERCHANT_CONFIG x.merchant_url");
    CHECK(error_of(R"({"x": {"merchant_url": "gopher://a"}})") == "MERCHANT_CONFIG x.merchant_url");
    CHECK(error_of(R"({"x": {"merchant_url": "http://a", "security_type": "magic"}})") ==
          "MERCHANT_CONFIG x.security_type");
    CHECK(error_of(R"({"x": {"merchant_url": "http://a", "security_type": "rsa"}})") ==
          "MERCHANT_CONFIG x.public_key_pem");
    CHECK(error_of(R"({"x": {"merchant_url": "http://a", "timeout_seconds": "5"}})") ==
          "MERCHANT_CONFIG x.timeout_seconds");
    CHECK(error_of(R"({"x": {"merchant_url": "http://a"}})").empty());
    std::filesystem::remove(pem);
    std::filesystem::remove(good);
  }

  TEST_CASE("login retry limit: key, count, 429 at the limit, 900 s expiry") {
    auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours{1};
    InProcessLoginRetryStore store([&now] { return now; });
    UserInfo user;
    user.scheme_account_id = 42;
    CHECK(login_retry_key("MockAgentIce", 42) == "retry-mockagentice-42");

    CountingAgent agent(2);
    agent.fail_with = errors::status_login_failed;
    for (int i = 0; i < 2; ++i) {
      CHECK_THROWS_AS(login_with_limit(agent, user, store), AgentError);
    }
    CHECK(store.count("retry-counting-42") == 2);
    agent.fail_with.reset();
    try {
      login_with_limit(agent, user, store);
      FAIL("expected 429");
    } catch (const AgentError& e) {
      CHECK(e.code() == 429);
    }
    CHECK(agent.calls == 2);  // the merchant was not asked again
    // Each blocked attempt sets the 900 s again (SETEX, as the original).
    now += std::chrono::seconds{899};
    CHECK_THROWS_AS(login_with_limit(agent, user, store), AgentError);
    now += std::chrono::seconds{899};
    CHECK(store.count("retry-counting-42") == 2);
    now += std::chrono::seconds{2};
    CHECK(store.count("retry-counting-42") == 0);
    login_with_limit(agent, user, store);  // the key expired: logins work again
    CHECK(agent.calls == 3);

    // Unlimited agents never hit 429; other exceptions count as failures and pass through.
    CountingAgent unlimited(std::nullopt);
    unlimited.throw_other = true;
    for (int i = 0; i < 10; ++i) {
      CHECK_THROWS_AS(login_with_limit(unlimited, user, store), std::runtime_error);
    }
    CHECK(unlimited.calls == 10);
    CHECK(store.count("retry-counting-42") == 10);

    // After a join, errors needing system action do not count.
    InProcessLoginRetryStore store2([&now] { return now; });
    CountingAgent joined(5);
    joined.fail_with = errors::end_site_down;
    user.from_join = true;
    CHECK_THROWS_AS(login_with_limit(joined, user, store2,
                                     [](std::string_view c) { return c == "EndSiteDownError"; }),
                    AgentError);
    CHECK(store2.count("retry-counting-42") == 0);
  }

  TEST_CASE("AgentError: kind, generic or specific message, root cause") {
    AgentError plain(errors::end_site_down);
    CHECK(plain.code() == 530);
    CHECK(plain.name() == "End site down");
    CHECK(plain.message().empty());
    CHECK(std::string(plain.what()) == "530 End site down");
    auto inner = std::make_shared<const AgentError>(errors::not_sent, "503 three times");
    AgentError wrapped(errors::join, "join failed", inner);
    CHECK(wrapped.root().error_class() == "NotSentError");
    CHECK(wrapped.cause()->message() == "503 three times");
    CHECK(std::string(wrapped.what()) == "538 General error preventing join: join failed");
  }

  TEST_CASE("registry: exact slugs and the performance-mock prefix") {
    AgentRegistry r;
    r.add({.slug = "performance-mock", .credential_fields = {}, .factory = {}, .context = {}});
    r.add({.slug = "a", .credential_fields = {"x"}, .factory = {}, .context = {}});
    CHECK(r.find("a") != nullptr);
    CHECK(r.find("performance-mock-12")->slug == "performance-mock");
    CHECK(r.find("b") == nullptr);
    CHECK(r.find("") == nullptr);
    CHECK(r.all().size() == 2);
  }

  TEST_CASE("metrics text: counters, histogram buckets and label escaping") {
    Metrics m;
    m.observe_request("s", "balance", 200, 0.003);
    m.observe_request("s", "balance", 200, 0.2);
    m.login("s", false, 403);
    m.publish("hermes", "dropped");
    const std::string t = m.render({{"g", "help", {{{{"q", "a\"b\\c\nd"}}, 2.5}}}});
    CHECK(t.find(R"(midas_api_requests_total{slug="s",endpoint="balance",status="200"} 2)") !=
          std::string::npos);
    CHECK(
        t.find(
            R"(midas_api_request_duration_seconds_bucket{slug="s",endpoint="balance",status="200",le="0.001"} 0)") !=
        std::string::npos);
    CHECK(
        t.find(
            R"(midas_api_request_duration_seconds_bucket{slug="s",endpoint="balance",status="200",le="0.005"} 1)") !=
        std::string::npos);
    CHECK(
        t.find(
            R"(midas_api_request_duration_seconds_bucket{slug="s",endpoint="balance",status="200",le="0.25"} 2)") !=
        std::string::npos);
    CHECK(
        t.find(
            R"(midas_api_request_duration_seconds_count{slug="s",endpoint="balance",status="200"} 2)") !=
        std::string::npos);
    CHECK(t.find(R"(midas_api_login_failure_total{slug="s",code="403"} 1)") != std::string::npos);
    CHECK(t.find(R"(g{q="a\"b\\c\nd"} 2.5)") != std::string::npos);
    CHECK(m.counter_value("midas_api_publish_total", {"hermes", "dropped"}) == 1);
  }

  TEST_CASE("logger: JSON lines, levels, and invalid UTF-8 does not throw") {
    std::string out;
    Logger log(Level::info, true, [&out](std::string_view line) { out += line; });
    log.debug("hidden");
    log.info("shown", {{"k", std::string("\xff\xfe")}});
    CHECK(out.find("hidden") == std::string::npos);
    REQUIRE_FALSE(out.empty());
    CHECK(out.back() == '\n');
    json j = json::parse(out);
    CHECK(j["message"] == "shown");
    CHECK(j["level"] == "info");
    CHECK(j["k"].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);

    std::string text;
    Logger plain(Level::debug, false, [&text](std::string_view line) { text += line; });
    plain.warning("careful", {{"n", 3}});
    CHECK(text.find(" warning careful n=3") != std::string::npos);
    CHECK(parse_level("WARN") == Level::warning);
    CHECK_FALSE(parse_level("verbose").has_value());
  }

  TEST_CASE("publisher: base URLs, disabled targets") {
    CHECK(split_base_url("http://h:1/hermes/") ==
          std::pair<std::string, std::string>{"http://h:1", "/hermes"});
    CHECK(split_base_url("https://h") == std::pair<std::string, std::string>{"https://h", ""});
    CHECK_THROWS(split_base_url("ftp://h/x"));
    CHECK_THROWS(split_base_url("h:1/x"));
    Metrics metrics;
    Logger log(Level::error, true, [](std::string_view) {});
    Publisher p(PublisherOptions{}, log, metrics);
    CHECK_FALSE(p.enabled("hermes"));
    CHECK_FALSE(
        p.submit({.target = "hermes", .method = "POST", .path = "/x", .body = "{}", .tid = ""}));
    CHECK(p.depth() == 0);
    CHECK(p.wait_idle(std::chrono::milliseconds{10}));
  }
}
