// SPDX-License-Identifier: MIT
// The durable join in process: its retry policy, the classification by root Midas error (the
// original's unfinished piece), the task params, the Hermes failure status, and the handler's
// checkpoints, with a counting agent on the memory backend.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <stop_token>

#include "agents/login_retry.hpp"
#include "crypto/credentials.hpp"
#include "hermes/hermes.hpp"
#include "journeys/join.hpp"
#include "midas/midas.hpp"

using nlohmann::json;
using namespace midas_api;  // NOLINT
using namespace std::chrono_literals;

namespace {

midas::Decision classify(const std::exception_ptr& e) {
  return join_classifier().classify(midas::Failure{e});
}

template <class F>
std::exception_ptr capture(F&& throw_it) {
  try {
    throw_it();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

class TransportFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("the join retry policy: 3^n x 60 s, 4 attempts, no jitter; the unit takes fractions") {
  const auto policy = join_retry_policy({});
  CHECK(policy.max_attempts() == 4);
  CHECK(policy.delay(1) == 180s);
  CHECK(policy.delay(2) == 540s);
  CHECK(policy.delay(3) == 1620s);
  CHECK(policy.can_retry(3));
  CHECK_FALSE(policy.can_retry(4));

  const auto fast = join_retry_policy(
      {.backoff_base = 3, .unit_seconds = 0.01, .max_retry_count = 2, .max_callback_retries = 3});
  CHECK(fast.max_attempts() == 3);
  CHECK(fast.delay(1) == 30ms);
  CHECK(fast.delay(2) == 90ms);
}

TEST_CASE("retryable join codes are 429, 520, 530, 531, 535, 537 and nothing else") {
  for (int code : {429, 520, 530, 531, 535, 537}) CHECK(is_retryable_join_code(code));
  for (int code : {401, 403, 404, 406, 432, 434, 436, 439, 444, 445, 447, 533, 536, 538}) {
    CHECK_FALSE(is_retryable_join_code(code));
  }
}

TEST_CASE("join failures are classified by the root Midas error, however they are wrapped") {
  const auto retry = midas::Decision::retry();
  const auto fail = midas::Decision::fail();

  CHECK(classify(capture([] { throw AgentError(errors::end_site_down); })) == retry);
  CHECK(classify(capture([] { throw AgentError(errors::status_login_failed); })) == fail);

  // A transport error nested under the agent's 530 (what iceland-bonus-card throws).
  CHECK(classify(capture([] {
          try {
            throw TransportFailure("connection refused");
          } catch (...) {
            std::throw_with_nested(AgentError(errors::end_site_down));
          }
        })) == retry);

  // The original's bug: a retryable error wrapped in a non-retryable one (JoinError), by cause
  // and by nesting. The root decides.
  CHECK(classify(capture([] {
          throw AgentError(errors::join, "join failed",
                           std::make_shared<AgentError>(errors::service_connection));
        })) == retry);
  CHECK(classify(capture([] {
          try {
            throw AgentError(errors::ip_blocked);
          } catch (...) {
            std::throw_with_nested(AgentError(errors::join));
          }
        })) == retry);
  // ...and in a type that is not a Midas error at all.
  CHECK(classify(capture([] {
          try {
            throw AgentError(errors::not_sent);
          } catch (...) {
            std::throw_with_nested(std::runtime_error("publish step failed"));
          }
        })) == retry);

  // A retryable wrapper around a final root is final.
  CHECK(classify(capture([] {
          try {
            throw AgentError(errors::account_already_exists);
          } catch (...) {
            std::throw_with_nested(AgentError(errors::end_site_down));
          }
        })) == fail);

  // No Midas error anywhere: 520 Unknown error, which is retried.
  CHECK(midas_code_of(midas::Failure{capture([] { throw std::logic_error("bug"); })}) == 520);
  CHECK(classify(capture([] { throw 42; })) == retry);
  CHECK(join_classifier().classify(midas::Failure{make_error_code(midas::errc::timeout)}) == retry);
}

TEST_CASE("attempt-join params keep the original's user_info shape, credentials encrypted") {
  const AttemptJoinParams p{.scheme_slug = "iceland-bonus-card",
                            .tid = "t-1",
                            .scheme_account_id = 42,
                            .user_set = "7",
                            .channel = "com.bink.wallet",
                            .credentials = "ENCRYPTED==",
                            .callback_retries = 1};
  const json j = p;
  CHECK(j == json::parse(R"({"scheme_slug": "iceland-bonus-card", "tid": "t-1",
      "user_info": {"scheme_account_id": 42, "user_set": "7", "channel": "com.bink.wallet",
                    "journey_type": 0, "status": 442, "credentials": "ENCRYPTED=="},
      "callback_retries": 1})"));
  const auto back = j.get<AttemptJoinParams>();
  CHECK(back.scheme_account_id == 42);
  CHECK(back.credentials == "ENCRYPTED==");
  CHECK(back.callback_retries == 1);
  json missing = j;
  missing["user_info"].erase("credentials");
  CHECK_THROWS_AS((void)missing.get<AttemptJoinParams>(), json::exception);
}

TEST_CASE("the Hermes status of a failed join") {
  CHECK(join_failure_status(445, json::object()) == 445);
  CHECK(join_failure_status(905, json::object()) == 905);
  CHECK(join_failure_status(530, json{{"card_number", "633"}}) == 902);
  CHECK(join_failure_status(403, json{{"barcode", "633"}}) == 902);
  CHECK(join_failure_status(538, json{{"email", "a@b.c"}}) == 901);
}

// --- the handler's checkpoints, with an agent that counts its calls
// -------------------------------

namespace {

struct Counts {
  std::atomic<int> joins{0};
  std::atomic<int> logins{0};
  std::atomic<int> fail_joins_with{0};  ///< Midas code join() throws; 0: succeed.
};

class CountingAgent final : public Agent {
 public:
  explicit CountingAgent(Counts& counts) : counts_(counts) {}
  void login() override { ++counts_.logins; }
  std::optional<Balance> balance() override { return Balance{}; }
  std::vector<Transaction> transactions() override { return {}; }
  JoinResult join() override {
    ++counts_.joins;
    if (const int code = counts_.fail_joins_with.load(); code != 0) {
      for (const ErrorKind& k : errors::all) {
        if (k.code == code) throw AgentError(k);
      }
    }
    return JoinResult{.expecting_callback = false, .identifier = json{{"card_number", "1"}}};
  }
  JoinResult join_callback(const json&) override { return {}; }
  [[nodiscard]] std::string retry_key_class() const override { return "counting"; }
  [[nodiscard]] std::optional<int> retry_limit() const override { return std::nullopt; }

 private:
  Counts& counts_;
};

const std::string kKey = "join-units-key";

struct Fixture {
  Counts counts;
  AgentRegistry agents;
  InProcessLoginRetryStore retries;
  Logger log{Level::error, true, [](std::string_view) {}};
  Metrics metrics;
  Publisher publisher{PublisherOptions{}, log, metrics};  // no URLs: every call is skipped
  HermesClient hermes{publisher, HermesClient::Delivery::now};
  data::ErrorTable errors = *data::load_error_table(MIDAS_API_DATA_SOURCE_DIR);
  std::unique_ptr<midas::Queue> queue = std::move(midas::connect("memory://").value());
  std::unique_ptr<JoinJourneys> joins;

  Fixture() {
    agents.add(
        AgentInfo{.slug = "counting",
                  .credential_fields = {},
                  .factory = [this](const AgentContext&, UserInfo) -> std::unique_ptr<Agent> {
                    return std::make_unique<CountingAgent>(counts);
                  },
                  .context = {}});
    joins = std::make_unique<JoinJourneys>(JoinDeps{.agents = agents,
                                                    .retries = retries,
                                                    .hermes = hermes,
                                                    .metrics = metrics,
                                                    .log = log,
                                                    .errors = errors,
                                                    .aes_key = kKey,
                                                    .queue = *queue,
                                                    .settings = {}});
  }

  AttemptJoinParams params(std::int64_t account) {
    auto enc = crypto::encrypt_credentials(json{{"email", "a@b.c"}}, kKey);
    REQUIRE(enc.has_value());
    return AttemptJoinParams{.scheme_slug = "counting",
                             .tid = "t",
                             .scheme_account_id = account,
                             .user_set = "1",
                             .channel = "c",
                             .credentials = *enc,
                             .callback_retries = 0};
  }

  /// Claims the join task, records `checkpoint` under its lease (as an earlier attempt would
  /// have before a crash), and runs the handler on it as the next attempt.
  midas::result<void> run_with_checkpoint(const AttemptJoinParams& p, const json& checkpoint) {
    auto e = joins->enqueue_join(p);
    REQUIRE(e.has_value());
    auto claimed = queue->claim(
        {.queues = {std::string(kJoinQueue)}, .limit = 1, .worker_id = "test", .lease = 8s});
    REQUIRE(claimed.has_value());
    REQUIRE(claimed.value().size() == 1);
    midas::ClaimedTask c = claimed.value()[0];
    if (!checkpoint.is_null()) {
      REQUIRE(queue->checkpoint(c.lease, checkpoint).has_value());
      c.task.checkpoint = checkpoint;
    }
    midas::TaskContext ctx{*queue, c, std::stop_token{}, 8s};
    return joins->attempt_join(p, ctx);
  }
};

}  // namespace

TEST_CASE("a fresh join task joins once, logs in, and records each step") {
  Fixture f;
  CHECK(f.run_with_checkpoint(f.params(1), nullptr).has_value());
  CHECK(f.counts.joins == 1);
  CHECK(f.counts.logins == 1);
  auto tasks = f.queue->list({});
  REQUIRE(tasks.has_value());
  REQUIRE(tasks.value().size() == 1);
  CHECK(tasks.value()[0].checkpoint == json{{"step", "published"}});
}

TEST_CASE("after a crash past the merchant's acceptance, the re-run does not join again") {
  Fixture f;
  CHECK(f.run_with_checkpoint(f.params(2),
                              json{{"step", "joined"}, {"identifier", {{"card_number", "1"}}}})
            .has_value());
  CHECK(f.counts.joins == 0);   // the merchant already has this member
  CHECK(f.counts.logins == 1);  // the rest of the work still happens
}

TEST_CASE("a join whose outcome was published, or that awaits its callback, is done on re-run") {
  for (const char* step : {"published", "awaiting_callback"}) {
    Fixture f;
    CHECK(f.run_with_checkpoint(f.params(3), json{{"step", step}}).has_value());
    CHECK(f.counts.joins == 0);
    CHECK(f.counts.logins == 0);
  }
}

TEST_CASE("join failures are thrown for the worker, and nothing is checkpointed") {
  for (int code : {530, 403}) {
    Fixture f;
    f.counts.fail_joins_with = code;
    CHECK_THROWS_AS((void)f.run_with_checkpoint(f.params(4), nullptr), AgentError);
    auto t = f.queue->list({});
    REQUIRE(t.has_value());
    CHECK(t.value()[0].checkpoint.is_null());  // nothing to resume: the join did not happen
  }
}

TEST_CASE("attempt-join's on_failed reports a failed join, but not one the merchant took") {
  Fixture f;
  midas::Registry registry;
  f.joins->register_tasks(registry);
  const midas::TaskType* type = registry.find(kAttemptJoin);
  REQUIRE(type != nullptr);
  REQUIRE(type->options.on_failed);
  CHECK(type->options.queue == kJoinQueue);
  CHECK(type->options.retry.max_attempts() == 4);
  const auto failed_joins = [&] {
    const std::string text = f.metrics.render({});
    const std::string key = R"(midas_api_join_total{slug="counting",outcome="failed"} )";
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::stoi(text.substr(at + key.size()));
  };

  midas::Task task;
  task.id = "t1";
  task.type = std::string(kAttemptJoin);
  task.params = f.params(6);
  task.attempt = 4;
  midas::AttemptRecord last;
  last.decision = "exhausted";
  const midas::Failure failure{std::make_exception_ptr(AgentError(errors::end_site_down))};
  type->options.on_failed(task, last, &failure);
  CHECK(failed_joins() == 1);
  type->options.on_failed(task, last, nullptr);  // a crashed worker's last attempt
  CHECK(failed_joins() == 2);

  task.checkpoint = json{{"step", "joined"}};  // the merchant has the member
  type->options.on_failed(task, last, &failure);
  CHECK(failed_joins() == 2);
}
