// SPDX-License-Identifier: MIT
// The durable join end to end, on each backend: midas-api (and `midas-api worker` processes) with
// midas-mock-merchant as merchant, Hermes and Hades. Retries with their spacing, failures that
// are final, the failure report, asynchronous joins through signed callbacks, duplicates, and
// (Postgres and Redis) worker processes killed with SIGKILL between and during attempts.
//
// Every case runs on memory, Postgres and Redis ("<backend>: ..."); the Postgres and Redis ones
// are skipped (and reported so) without MIDAS_TEST_PG_URL / MIDAS_TEST_REDIS_URL. Each stack gets
// its own Postgres schema or Redis key prefix, so cases may run in parallel.

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "crypto/credentials.hpp"
#include "crypto/hashids.hpp"
#include "e2e_support.hpp"
#include "midas/task.hpp"

using e2e::json;

namespace {

const std::string kAesKey = "e2e-join-aes-key";
constexpr const char* kIceland = "iceland-bonus-card";

enum class Backend { memory, postgres, redis };

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

bool unavailable(Backend b) {
  switch (b) {
    case Backend::memory:
      return false;
    case Backend::postgres:
      return !env("MIDAS_TEST_PG_URL");
    case Backend::redis:
      return !env("MIDAS_TEST_REDIS_URL");
  }
  return true;
}

// A backend URL of its own for one stack: a fresh Postgres schema or Redis key prefix.
std::string backend_url(Backend b) {
  static std::atomic<int> counter{0};
  const std::string tag = std::to_string(getpid()) + "_" + std::to_string(++counter);
  auto with_query = [](const std::string& url, const std::string& q) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + q;
  };
  switch (b) {
    case Backend::memory:
      return "memory://";
    case Backend::postgres:
      return with_query(*env("MIDAS_TEST_PG_URL"), "schema=e2e_join_" + tag);
    case Backend::redis:
      return with_query(*env("MIDAS_TEST_REDIS_URL"), "prefix=e2e-join-" + tag);
  }
  return {};
}

// A loopback port nobody listens on, below the ephemeral range (32768-60999) so that no client
// connection holds it: midas-api's port must be known before it starts (the merchant calls back).
int free_port() {
  std::mt19937 rng{std::random_device{}()};
  for (int i = 0; i < 200; ++i) {
    const int port = 20000 + static_cast<int>(rng() % 12000);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("no free loopback port found");
}

// "2026-11-27T19:06:00.123Z" (the library's time format) -> milliseconds since the epoch.
std::int64_t epoch_ms(const json& iso) {
  REQUIRE(iso.is_string());
  const auto t = midas::parse_time(iso.get<std::string>());
  REQUIRE(t.has_value());
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.value().time_since_epoch())
      .count();
}

json join_credentials(const std::string& email, const std::string& postcode = "rg1 1aa") {
  return json{{"first_name", "Ada"},
              {"last_name", "Lovelace"},
              {"email", email},
              {"postcode", postcode},
              {"consents", json::array({json{{"id", 71}, {"slug", "marketing"}},
                                        json{{"id", 72}, {"slug", "terms"}}})}};
}

struct StackOptions {
  int in_process_workers = 2;  ///< WORKER_CONCURRENCY of the API process.
  std::string unit = "0.05";   ///< RETRY_UNIT_SECONDS
  double merchant_timeout = 0.5;
  std::string lease = "8";            ///< WORKER_LEASE_SECONDS
  std::string max_retry_count = "3";  ///< MAX_RETRY_COUNT
};

/// midas-mock-merchant + midas-api (+ `midas-api worker` processes) on one backend.
struct JoinStack {
  Backend backend;
  StackOptions options;
  std::unique_ptr<e2e::Process> merchant;
  std::unique_ptr<e2e::Process> api;
  std::vector<std::unique_ptr<e2e::Process>> workers;
  std::unique_ptr<e2e::Http> m;  ///< Merchant, Hermes and Hades stub.
  std::unique_ptr<e2e::Http> a;  ///< midas-api.
  std::vector<std::pair<std::string, std::string>> environment;
  std::string callback_url;

  JoinStack(Backend b, StackOptions o = {}) : backend(b), options(o), backend_url_(backend_url(b)) {
    merchant = e2e::start_mock_merchant({"--callback-delay-ms", "50"}, "e2e_join_merchant");
    m = std::make_unique<e2e::Http>(merchant->url());
    const int port = free_port();
    callback_url = "http://127.0.0.1:" + std::to_string(port) + "/join/merchant/" + kIceland;
    const std::string config =
        e2e::log_path("e2e_join_merchant_config") + "." + std::to_string(port) + ".json";
    std::ofstream out(config);
    out << json{{kIceland,
                 {{"merchant_url", merchant->url() + "/merchant"},
                  {"security_type", "rsa"},
                  {"public_key_pem", e2e::read_text(std::string(MIDAS_MOCK_MERCHANT_KEYS_DIR) +
                                                    "/merchant_public.pem")},
                  {"callback_url", callback_url},
                  {"timeout_seconds", o.merchant_timeout},
                  {"max_retries", 0}}}}
               .dump(2);
    out.close();
    environment = {{"AES_KEY", kAesKey},
                   {"HERMES_URL", merchant->url() + "/hermes"},
                   {"HADES_URL", merchant->url() + "/hades"},
                   {"MIDAS_BACKEND_URL", backend_url_},
                   {"MERCHANT_CONFIG", config},
                   {"RETRY_UNIT_SECONDS", o.unit},
                   {"WORKER_LEASE_SECONDS", o.lease},
                   {"MAX_RETRY_COUNT", o.max_retry_count},
                   {"LOG_JSON", "true"},
                   {"LOG_LEVEL", "info"}};
    auto api_env = environment;
    api_env.emplace_back("WORKER_CONCURRENCY", std::to_string(o.in_process_workers));
    api = std::make_unique<e2e::Process>(
        std::vector<std::string>{MIDAS_API_BIN, "--port", std::to_string(port), "--host",
                                 "127.0.0.1"},
        api_env, e2e::log_path("e2e_join_midas_api"), kUnset);
    a = std::make_unique<e2e::Http>(api->url());
  }

  /// Starts a `midas-api worker` process (2 workers) on the same backend; returns its index.
  std::size_t start_worker() {
    auto worker_env = environment;
    worker_env.emplace_back("WORKER_CONCURRENCY", "2");
    workers.push_back(std::make_unique<e2e::Process>(
        std::vector<std::string>{MIDAS_API_BIN, "worker", "--port", "0", "--host", "127.0.0.1"},
        worker_env, e2e::log_path("e2e_join_worker"), kUnset));
    return workers.size() - 1;
  }

  /// kill -9 of a worker process, then reaps it.
  void kill9(std::size_t i) {
    REQUIRE(workers.at(i)->pid() > 0);
    ::kill(workers[i]->pid(), SIGKILL);
    workers[i]->stop();
  }

  /// POST /{slug}/join; returns the reply (X-Task-Id names the task).
  e2e::Reply join(const std::string& slug, std::int64_t account, const json& credentials,
                  const std::string& tid = "tid-join") {
    auto enc = midas_api::crypto::encrypt_credentials(credentials, kAesKey);
    REQUIRE(enc.has_value());
    return a->post("/" + slug + "/join",
                   json{{"scheme_account_id", account},
                        {"user_id", 9},
                        {"channel", "com.bink.wallet"},
                        {"credentials", *enc}},
                   {{"X-Azure-Ref", tid}});
  }
  /// The same, requiring a 200 {"message": "success"}; returns the task id.
  std::string join_ok(const std::string& slug, std::int64_t account, const json& credentials) {
    const auto r = join(slug, account, credentials);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(r.json_body == json{{"message", "success"}});
    const std::string id = r.headers.count("X-Task-Id") ? r.headers.find("X-Task-Id")->second : "";
    REQUIRE(!id.empty());
    return id;
  }

  json task(const std::string& id) {
    const auto r = a->get("/tasks/" + id);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return r.json_body;
  }
  /// Waits until task `id` is finished (succeeded, failed or cancelled); returns it.
  json wait_finished(const std::string& id,
                     std::chrono::seconds timeout = std::chrono::seconds{60}) {
    json t;
    const bool done = e2e::eventually(
        [&] {
          t = task(id);
          const std::string s = t.value("status", "");
          return s == "succeeded" || s == "failed" || s == "cancelled";
        },
        timeout);
    REQUIRE_MESSAGE(done, "task " << id << " did not finish: " << t.dump() << "\napi log:\n"
                                  << api->log_tail());
    return t;
  }
  json tasks(const std::string& query) {
    const auto r = a->get("/tasks?" + query);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return r.json_body["tasks"];
  }
  json calls(const std::string& prefix) {
    return m->get("/_calls?path_prefix=" + e2e::url_encode(prefix)).json_body;
  }
  json wait_calls(const std::string& prefix, std::size_t n,
                  std::chrono::seconds timeout = std::chrono::seconds{30}) {
    e2e::eventually([&] { return calls(prefix).size() >= n; }, timeout);
    return calls(prefix);
  }
  json statuses(std::int64_t account) {
    return calls("/hermes/schemes/accounts/" + std::to_string(account) + "/status");
  }
  void fault(const json& f) { REQUIRE(m->post("/_faults", f).status == 201); }
  [[nodiscard]] const std::string& queue_url() const { return backend_url_; }

 private:
  inline static const std::vector<std::string> kUnset{
      "REDIS_URL",       "DEV_PORT",       "DEV_HOST",           "AES_KEY_FILE",
      "SERVICE_API_KEY", "MIDAS_DATA_DIR", "RETRY_BACKOFF_BASE", "MAX_CALLBACK_RETRY_COUNT"};
  std::string backend_url_;
};

/// What a command printed on stdout (and its exit status), for the tools' view of a task.
std::pair<int, std::string> run_command(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  return {status, out};
}

std::size_t count_status(const json& calls, int status) {
  std::size_t n = 0;
  for (const auto& c : calls) n += c["body"].value("status", -1) == status ? 1U : 0U;
  return n;
}

/// Hermes got one status 1 with journey "join", no join-failed-event, Hades one balance.
void check_joined_once(JoinStack& s, std::int64_t account) {
  json statuses =
      s.wait_calls("/hermes/schemes/accounts/" + std::to_string(account) + "/status", 1);
  // Give a duplicate the time to show up before counting.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  json all = s.statuses(account);
  CHECK_MESSAGE(count_status(all, 1) == 1, all.dump());
  CHECK_MESSAGE(all.size() == 1, all.dump());
  REQUIRE(!all.empty());
  CHECK(all[0]["body"]["journey"] == "join");
  CHECK(all[0]["body"]["user_info"]["scheme_account_id"] == account);
  CHECK_FALSE(all[0]["body"]["user_info"].contains("credentials"));
  json balances = s.calls("/hades/balance");
  std::size_t mine = 0;
  for (const auto& b : balances)
    mine += b["body"].value("scheme_account_id", std::int64_t{0}) == account ? 1U : 0U;
  CHECK_MESSAGE(mine == 1, balances.dump());
}

/// Hermes got the failure report: join-failed-event with `status`, both consents failed, the
/// credentials deleted; and never status 1.
void check_failure_report(JoinStack& s, std::int64_t account, int status, bool keep_card,
                          const std::string& slug = kIceland) {
  const std::string base = "/hermes/schemes/accounts/" + std::to_string(account);
  json statuses = s.wait_calls(base + "/status", 1);
  REQUIRE(statuses.size() == 1);
  CHECK(statuses[0]["body"]["status"] == status);
  CHECK(statuses[0]["body"]["event_name"] == "join-failed-event");
  CHECK(statuses[0]["body"]["metadata"] == json{{"scheme", slug}});
  CHECK(statuses[0]["headers"]["transaction"] == "tid-join");
  json consents = s.wait_calls("/hermes/schemes/user_consent/", 2);
  REQUIRE(consents.size() == 2);
  for (const auto& c : consents) {
    CHECK(c["method"] == "PUT");
    CHECK(c["body"] == json{{"status", 2}});
  }
  json deleted = s.wait_calls(base + "/credentials", 1);
  REQUIRE(deleted.size() == 1);
  CHECK(deleted[0]["method"] == "DELETE");
  CHECK(deleted[0]["body"] == (keep_card ? json{{"keep_card_number", true}} : json{{"all", true}}));
}

// --- the scenarios -----------------------------------------------------------------------------

void fails_twice_then_succeeds(Backend b) {
  JoinStack s(b);
  s.fault({{"path_prefix", "/merchant/join"}, {"status", 503}, {"times", 2}});
  const std::string id = s.join_ok(kIceland, 101, join_credentials("ada101@example.com"));
  json t = s.wait_finished(id);
  CHECK(t["status"] == "succeeded");
  CHECK(t["type"] == "attempt-join");
  CHECK(t["queue"] == "midas-retry");
  CHECK(t["unique_key"] == "101");
  CHECK(t["checkpoint"] == json{{"step", "awaiting_callback"}});
  CHECK(t["params"]["user_info"]["credentials"] == "[encrypted, not shown]");
  const json& h = t["history"];
  REQUIRE(h.size() == 3);
  // The policy's spacing: 3^1 x 50 ms, then 3^2 x 50 ms, no jitter; never earlier.
  const std::int64_t delays[] = {150, 450};
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(h[i]["decision"] == "retry");
    CHECK(h[i]["error"]["message"] == "merchant answered HTTP 503");
    CHECK(epoch_ms(h[i]["next_run_at"]) - epoch_ms(h[i]["finished_at"]) == delays[i]);
    CHECK(epoch_ms(h[i + 1]["started_at"]) >= epoch_ms(h[i]["next_run_at"]));
  }
  CHECK(h[2]["decision"] == "succeeded");
  // No status while retries were pending: the only one is the final status 1.
  check_joined_once(s, 101);
  // The callback's task published, after confirming the consents.
  json consents = s.calls("/hermes/schemes/user_consent/");
  REQUIRE(consents.size() == 2);
  CHECK(consents[0]["body"] == json{{"status", 1}});
  json creds = s.calls("/hermes/schemes/accounts/101/credentials");
  REQUIRE(creds.size() == 1);
  CHECK(creds[0]["method"] == "PUT");
  CHECK(creds[0]["body"].contains("card_number"));
  // The credentials appear in clear nowhere: not in the log, not in the task as stored.
  const std::string log = s.api->log_tail(10'000'000);
  CHECK(log.find("ada101@example.com") == std::string::npos);
  CHECK(log.find("Lovelace") == std::string::npos);
  CHECK(t.dump().find("ada101@example.com") == std::string::npos);
#ifdef MIDASCTL_BIN
  // Nor in what an operator sees with midasctl, which shows params as stored: only encrypted.
  if (b != Backend::memory) {
    for (const std::string& args : {"show '" + id + "'", "show '" + id + "' --json",
                                    std::string{"list --queue midas-retry --json"}}) {
      CAPTURE(args);
      const auto [status, out] = run_command(std::string{MIDASCTL_BIN} + " --url '" +
                                             s.queue_url() + "' " + args + " 2>&1");
      CHECK(status == 0);
      CHECK(out.find(id.substr(id.find('/') + 1)) != std::string::npos);  // the task is shown
      CHECK(out.find("ada101@example.com") == std::string::npos);
      CHECK(out.find("Lovelace") == std::string::npos);
    }
  }
#endif
  // The counters operators watch.
  const std::string metrics = s.a->get("/metrics").body;
  CHECK(metrics.find(R"(midas_api_tasks_total{type="attempt-join",outcome="error"} 2)") !=
        std::string::npos);
  CHECK(metrics.find(R"(midas_api_join_total{slug="iceland-bonus-card",outcome="success"} 1)") !=
        std::string::npos);
  MESSAGE("operator view of the join task:\n" << t.dump(2));
}

void timeout_and_dropped_connection_are_retried(Backend b) {
  JoinStack s(b);
  // A late 503 (after the agent's 0.5 s timeout: the merchant never took it), then a drop.
  s.fault(json::array(
      {json{{"path_prefix", "/merchant/join"}, {"delay_ms", 1500}, {"status", 503}, {"times", 1}},
       json{{"path_prefix", "/merchant/join"}, {"drop_connection", true}, {"times", 1}}}));
  const std::string id = s.join_ok(kIceland, 102, join_credentials("ada102@example.com"));
  json t = s.wait_finished(id);
  CHECK(t["status"] == "succeeded");
  REQUIRE(t["history"].size() == 3);
  CHECK(t["history"][0]["decision"] == "retry");
  CHECK(t["history"][1]["decision"] == "retry");
  CHECK(t["history"][0]["error"]["type"] == "midas_api::TransportError");
  CHECK(t["history"][1]["error"]["type"] == "midas_api::TransportError");
  check_joined_once(s, 102);
}

void merchant_401_fails_at_once(Backend b) {
  JoinStack s(b);
  s.fault({{"path_prefix", "/merchant/join"}, {"status", 401}, {"times", 1}});
  json credentials = join_credentials("ada103@example.com");
  credentials["card_number"] = "6332040012345678901";
  const std::string id = s.join_ok(kIceland, 103, credentials);
  json t = s.wait_finished(id);
  CHECK(t["status"] == "failed");
  REQUIRE(t["history"].size() == 1);  // a 401 (Midas 403) is not retried
  CHECK(t["history"][0]["decision"] == "fail");
  CHECK(t["checkpoint"].is_null());         // nothing took effect
  check_failure_report(s, 103, 902, true);  // the credentials had a card: 902
  CHECK(s.calls("/merchant/join").size() == 1);
}

void invalid_join_fails_at_once_with_901(Backend b) {
  JoinStack s(b);
  json credentials = join_credentials("ada104@example.com");
  credentials.erase("postcode");  // the agent refuses: JoinError 538, not retryable
  const std::string id = s.join_ok(kIceland, 104, credentials);
  json t = s.wait_finished(id);
  CHECK(t["status"] == "failed");
  CHECK(t["history"].size() == 1);
  check_failure_report(s, 104, 901, false);
  CHECK(s.calls("/merchant/join").empty());
}

void retries_exhausted(Backend b) {
  JoinStack s(b);
  s.fault({{"path_prefix", "/merchant/join"}, {"status", 503}, {"times", -1}});
  const std::string id = s.join_ok(kIceland, 105, join_credentials("ada105@example.com"));
  json t = s.wait_finished(id);
  CHECK(t["status"] == "failed");
  CHECK(t["attempt"] == 4);
  CHECK(t["max_attempts"] == 4);
  const json& h = t["history"];
  REQUIRE(h.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(h[i]["error"]["message"] == "merchant answered HTTP 503");
    CHECK(h[i]["decision"] == (i < 3 ? "retry" : "exhausted"));
  }
  check_failure_report(s, 105, 901, false);
  CHECK(s.calls("/merchant/join").size() == 4);
  // Operators find it among the failed tasks.
  bool listed = false;
  for (const auto& f : s.tasks("status=failed&type=attempt-join")) listed = listed || f["id"] == id;
  CHECK(listed);
  MESSAGE("operator view of the failed join task:\n" << t.dump(2));
}

/// Everything iceland-bonus-card-mock's join asks for.
json full_join_credentials(const std::string& email) {
  json c = join_credentials(email);
  for (const char* k :
       {"title", "phone", "date_of_birth", "county", "town_city", "address_1", "address_2"}) {
    c[k] = std::string("x-") + k;
  }
  return c;
}

void mock_agent_joins_synchronously(Backend b) {
  JoinStack s(b);
  const std::string id =
      s.join_ok("iceland-bonus-card-mock", 106, full_join_credentials("ada106@example.com"));
  json t = s.wait_finished(id);
  CHECK(t["status"] == "succeeded");
  CHECK(t["checkpoint"] == json{{"step", "published"}});
  check_joined_once(s, 106);
  // An email the merchant knows: 445, reported at once with status 445.
  const std::string id2 =
      s.join_ok("iceland-bonus-card-mock", 107, full_join_credentials("zero@testbink.com"));
  json t2 = s.wait_finished(id2);
  CHECK(t2["status"] == "failed");
  CHECK(t2["history"].size() == 1);
  json st = s.wait_calls("/hermes/schemes/accounts/107/status", 1);
  REQUIRE(st.size() == 1);
  CHECK(st[0]["body"]["status"] == 445);
  CHECK(st[0]["body"]["event_name"] == "join-failed-event");
}

void callback_join_error_then_success(Backend b) {
  JoinStack s(b);
  s.fault({{"path_prefix", "/merchant/join"}, {"callback_error_code", "JOIN_ERROR"}, {"times", 1}});
  const std::string id = s.join_ok(kIceland, 108, join_credentials("ada108@example.com"));
  s.wait_finished(id);
  check_joined_once(s, 108);
  CHECK(s.calls("/merchant/join").size() == 2);  // scheduled again once
  json joins = s.tasks("type=attempt-join");
  REQUIRE(joins.size() == 2);
  for (const auto& j : joins) CHECK(j["status"] == "succeeded");
  json callbacks = s.tasks("type=join-callback");
  REQUIRE(callbacks.size() == 2);
  std::set<std::string> steps;
  for (const auto& c : callbacks) steps.insert(c["checkpoint"].value("step", ""));
  CHECK(steps == std::set<std::string>{"rescheduled", "published"});
  // No failure was reported on the way.
  CHECK(s.calls("/hermes/schemes/accounts/108/credentials").size() == 1);  // the PUT only
}

void forged_callbacks_are_refused(Backend b) {
  JoinStack s(b);
  json body{{"message_uid", "1"},
            {"record_uid", midas_api::crypto::record_uid(109)},
            {"barcode", "1"},
            {"card_number", "6332040000000000001"},
            {"merchant_scheme_id2", "x"}};
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  for (const json& variant :
       {json{{"tamper", true}}, json{{"omit_signature", true}}, json{{"timestamp", now - 1000}}}) {
    json req = variant;
    req["body"] = body;
    req["url"] = s.callback_url;
    const auto r = s.m->post("/_callback", req);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK_MESSAGE(r.json_body["status"] == 401, variant.dump() << " -> " << r.body);
  }
  // A correctly signed one is taken (and fails as a task: no such join).
  const auto ok = s.m->post("/_callback", json{{"body", body}, {"url", s.callback_url}});
  CHECK_MESSAGE(ok.json_body["status"] == 200, ok.body);
  CHECK(s.tasks("type=join-callback").size() == 1);
  CHECK(s.statuses(109).empty());
}

void same_account_twice_at_once(Backend b) {
  JoinStack s(b);
  // The merchant is slow, so the first join is still running when the second arrives.
  s.fault({{"path_prefix", "/merchant/join"}, {"delay_ms", 300}, {"times", 1}});
  std::string ids[2];
  std::thread second([&] {
    const auto r = s.join(kIceland, 110, join_credentials("ada110@example.com"));
    if (r.status == 200 && r.headers.count("X-Task-Id"))
      ids[1] = r.headers.find("X-Task-Id")->second;
  });
  const auto r = s.join(kIceland, 110, join_credentials("ada110@example.com"));
  second.join();
  REQUIRE(r.status == 200);
  ids[0] = r.headers.find("X-Task-Id")->second;
  CHECK(ids[0] == ids[1]);
  s.wait_finished(ids[0]);
  check_joined_once(s, 110);
  CHECK(s.tasks("type=attempt-join").size() == 1);
}

// Crash: the API stores joins (no workers); `midas-api worker` processes run them.
void crash_between_attempts(Backend b) {
  JoinStack s(b, {.in_process_workers = 0, .unit = "1", .merchant_timeout = 5, .lease = "2"});
  const std::size_t w1 = s.start_worker();
  s.fault({{"path_prefix", "/merchant/join"}, {"status", 503}, {"times", 1}});
  const std::string id = s.join_ok(kIceland, 111, join_credentials("ada111@example.com"));
  // Attempt 1 failed and attempt 2 is 3 s away: kill the worker now.
  REQUIRE(e2e::eventually([&] { return s.task(id)["status"] == "retrying"; }));
  s.kill9(w1);
  s.start_worker();
  json t = s.wait_finished(id);
  CHECK(t["status"] == "succeeded");
  CHECK(t["history"].size() == 2);
  check_joined_once(s, 111);
  for (const auto& task : s.tasks("limit=100")) CHECK(task["status"] == "succeeded");
  MESSAGE("join task after a worker was killed between attempts:\n" << t.dump(2));
}

void crash_during_an_attempt(Backend b) {
  JoinStack s(b, {.in_process_workers = 0, .unit = "0.2", .merchant_timeout = 10, .lease = "2"});
  const std::size_t w1 = s.start_worker();
  // The merchant holds the first join for 4 s and then refuses it: the worker dies meanwhile.
  s.fault({{"path_prefix", "/merchant/join"}, {"delay_ms", 4000}, {"status", 503}, {"times", 1}});
  const std::string id = s.join_ok(kIceland, 112, join_credentials("ada112@example.com"));
  REQUIRE(e2e::eventually([&] { return s.calls("/merchant/join").size() == 1; }));
  CHECK(s.task(id)["status"] == "running");
  s.kill9(w1);
  s.start_worker();
  json t = s.wait_finished(id);
  CHECK(t["status"] == "succeeded");
  REQUIRE(t["history"].size() == 2);
  CHECK(t["history"][0]["error"]["type"] == "lease_expired");
  check_joined_once(s, 112);
  CHECK(s.calls("/merchant/join").size() == 2);
  for (const auto& task : s.tasks("limit=100")) CHECK(task["status"] == "succeeded");
  MESSAGE("join task after a worker was killed during an attempt:\n" << t.dump(2));
}

void crash_during_the_last_attempt(Backend b) {
  JoinStack s(b, {.in_process_workers = 0,
                  .unit = "0.2",
                  .merchant_timeout = 10,
                  .lease = "2",
                  .max_retry_count = "0"});  // one attempt only
  const std::size_t w1 = s.start_worker();
  s.fault({{"path_prefix", "/merchant/join"}, {"delay_ms", 4000}, {"status", 503}, {"times", 1}});
  const std::string id = s.join_ok(kIceland, 113, join_credentials("ada113@example.com"));
  REQUIRE(e2e::eventually([&] { return s.calls("/merchant/join").size() == 1; }));
  s.kill9(w1);
  s.start_worker();
  json t = s.wait_finished(id);
  CHECK(t["status"] == "failed");
  REQUIRE(t["history"].size() == 1);
  CHECK(t["history"][0]["error"]["type"] == "lease_expired");
  CHECK(t["history"][0]["decision"] == "exhausted");
  // No handler ran again, yet Hermes heard of the failure (from the rescuing worker).
  check_failure_report(s, 113, 901, false);
  MESSAGE("join task whose last attempt died with its worker:\n" << t.dump(2));
}

}  // namespace

#define JOIN_CASE(name, fn)                                                     \
  TEST_CASE("memory: " name) { fn(Backend::memory); }                           \
  TEST_CASE("postgres: " name* doctest::skip(unavailable(Backend::postgres))) { \
    fn(Backend::postgres);                                                      \
  }                                                                             \
  TEST_CASE("redis: " name* doctest::skip(unavailable(Backend::redis))) { fn(Backend::redis); }

#define JOIN_CRASH_CASE(name, fn)                                               \
  TEST_CASE("postgres: " name* doctest::skip(unavailable(Backend::postgres))) { \
    fn(Backend::postgres);                                                      \
  }                                                                             \
  TEST_CASE("redis: " name* doctest::skip(unavailable(Backend::redis))) { fn(Backend::redis); }

JOIN_CASE(
    "a join the merchant refuses twice with 503 succeeds on the third attempt, spaced by "
    "the policy, and Hermes gets status 1 and Hades the balance once",
    fails_twice_then_succeeds)
JOIN_CASE("a merchant timeout and a dropped connection are retried",
          timeout_and_dropped_connection_are_retried)
JOIN_CASE(
    "a merchant 401 fails the join at once: join-failed-event 902, consents failed, "
    "credentials deleted",
    merchant_401_fails_at_once)
JOIN_CASE("a join the agent refuses fails at once with 901", invalid_join_fails_at_once_with_901)
JOIN_CASE("retries exhausted: 4 attempts, every error in the history, then the failure report",
          retries_exhausted)
JOIN_CASE("a synchronous (mock) agent joins and publishes, and an existing email is reported 445",
          mock_agent_joins_synchronously)
JOIN_CASE("a callback with JOIN_ERROR schedules the join again, which then succeeds",
          callback_join_error_then_success)
JOIN_CASE("forged, unsigned and stale callbacks are refused with 401", forged_callbacks_are_refused)
JOIN_CASE("the same scheme account joined twice at once makes one task", same_account_twice_at_once)
JOIN_CRASH_CASE("kill -9 of the worker process between attempts: the join completes once",
                crash_between_attempts)
JOIN_CRASH_CASE("kill -9 of the worker process during an attempt: the join completes once",
                crash_during_an_attempt)
JOIN_CRASH_CASE("kill -9 of the worker process during the last attempt: the failure is reported",
                crash_during_the_last_attempt)
