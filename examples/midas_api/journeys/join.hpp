// SPDX-License-Identifier: MIT
#pragma once

/// The durable join (MIDAS_API.md "The attempt-join task"): what POST /{slug}/join stores, the
/// `attempt-join` and `join-callback` task handlers, and the retry policy and error classifier
/// the original service never finished.
///
/// Flow:
/// - POST /{slug}/join enqueues `attempt-join` on queue `midas-retry` (unique key: the scheme
///   account id) and answers once it is stored.
/// - `attempt-join` decrypts the credentials and runs the agent's join. A synchronous agent then
///   logs in and publishes (Hades balance and transactions, Hermes status 1, journey "join"). An
///   asynchronous agent's task ends once the merchant accepted; the merchant's callback becomes a
///   `join-callback` task, which publishes on success, schedules the join again on JOIN_ERROR
///   (MAX_CALLBACK_RETRY_COUNT times), and reports a failed join otherwise.
/// - Failures are classified by the root Midas error: 429, 520, 530, 531, 535, 537 retry with
///   `RETRY_BACKOFF_BASE^n x RETRY_UNIT_SECONDS`, up to MAX_RETRY_COUNT retries; everything else
///   fails at once. A join that fails for good is reported to Hermes (status 445/905/902/901,
///   `join-failed-event`, consents failed, credentials deleted). No status is posted while
///   retries are pending.
/// - Progress is checkpointed (`TaskContext::checkpoint`): after a crash, a re-run resumes after
///   the last step that took effect (the merchant accepted the join, the status was published)
///   instead of joining twice.
///
/// Credentials stay encrypted in the task params; the decrypted ones live only in the handler.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agents/agent.hpp"
#include "crypto/reference_data.hpp"
#include "hermes/hermes.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "midas/error_classifier.hpp"
#include "midas/queue.hpp"
#include "midas/registry.hpp"
#include "midas/retry_policy.hpp"
#include "midas/task_context.hpp"

namespace midas_api {

/// The queue of the join tasks (the original's RQ queue name).
inline constexpr std::string_view kJoinQueue = "midas-retry";
/// Task type: one join of one scheme account.
inline constexpr std::string_view kAttemptJoin = "attempt-join";
/// Task type: one merchant callback with a join result.
inline constexpr std::string_view kJoinCallback = "join-callback";

/// The retry settings of the join tasks (environment, see config.hpp).
struct JoinSettings {
  double backoff_base = 3;       ///< RETRY_BACKOFF_BASE
  double unit_seconds = 60;      ///< RETRY_UNIT_SECONDS (fractions allowed)
  int max_retry_count = 3;       ///< MAX_RETRY_COUNT: attempts = this + 1
  int max_callback_retries = 3;  ///< MAX_CALLBACK_RETRY_COUNT
};

/// `exponential(base, unit)` without jitter, `max_retry_count + 1` attempts: 180, 540, 1620 s
/// with the defaults.
[[nodiscard]] midas::RetryPolicy join_retry_policy(const JoinSettings& settings);

/// True for the Midas codes a join retries: 429, 520, 530, 531, 535, 537.
[[nodiscard]] bool is_retryable_join_code(int code) noexcept;

/** The Midas code of a failure: the innermost AgentError of the exception chain (nested
 *  exceptions and AgentError::cause() both count), so a retryable error wrapped in another
 *  stays retryable. A failure that holds no AgentError is 520 Unknown error, as the HTTP layer
 *  answers it. */
[[nodiscard]] int midas_code_of(const midas::Failure& failure);

/// Retry on is_retryable_join_code(midas_code_of(f)), fail otherwise.
[[nodiscard]] midas::ErrorClassifier join_classifier();

/// Params of an `attempt-join` task (the original's user_info, credentials still encrypted).
struct AttemptJoinParams {
  std::string scheme_slug{};
  std::string tid{};
  std::int64_t scheme_account_id = 0;
  std::string user_set{};
  std::string channel{};
  std::string credentials{};  ///< Encrypted (AES, base64), never decrypted into the params.
  int callback_retries = 0;   ///< Joins already scheduled again by a JOIN_ERROR callback.
};
/// `{"scheme_slug","tid","user_info":{"scheme_account_id","user_set","channel","journey_type":0,
/// "status":442,"credentials"},"callback_retries"}`.
void to_json(nlohmann::json& j, const AttemptJoinParams& p);
void from_json(const nlohmann::json& j, AttemptJoinParams& p);

/// Params of a `join-callback` task: the merchant's decoded callback body.
struct JoinCallbackParams {
  std::string scheme_slug{};
  std::int64_t scheme_account_id = 0;  ///< Decoded from the body's record_uid.
  nlohmann::json body = nlohmann::json::object();
};
void to_json(nlohmann::json& j, const JoinCallbackParams& p);
void from_json(const nlohmann::json& j, JoinCallbackParams& p);

/// The Hermes status of a failed join: 445 already exists, 905 weak password, 902 when the
/// credentials hold a card number or barcode, 901 otherwise.
[[nodiscard]] int join_failure_status(int midas_code, const nlohmann::json& credentials);

/// What the join journeys use; every reference outlives them.
struct JoinDeps {
  const AgentRegistry& agents;
  LoginRetryStore& retries;
  HermesClient& hermes;  ///< Delivery::now: a step counts as done once its calls arrived.
  Metrics& metrics;
  const Logger& log;
  const data::ErrorTable& errors;
  std::string aes_key;
  midas::Queue& queue;
  JoinSettings settings{};
};

/// Enqueues joins and callbacks and runs their tasks. Thread-safe.
class JoinJourneys {
 public:
  explicit JoinJourneys(JoinDeps deps);

  /// Registers `attempt-join` and `join-callback` on queue midas-retry.
  void register_tasks(midas::Registry& registry);

  /** Stores an `attempt-join` task, due after `delay`; a join of the same scheme account still
   *  in flight is not duplicated (`Enqueued::duplicate`, its id). */
  [[nodiscard]] midas::result<midas::Enqueued> enqueue_join(const AttemptJoinParams& params,
                                                            midas::Duration delay = {});
  /// Stores a `join-callback` task (unique per message_uid while unfinished).
  [[nodiscard]] midas::result<midas::Enqueued> enqueue_callback(const JoinCallbackParams& params);

  /// The `attempt-join` handler; throws what the classifier decides on.
  midas::result<void> attempt_join(const AttemptJoinParams& params, midas::TaskContext& ctx);
  /// The `join-callback` handler.
  midas::result<void> join_callback(const JoinCallbackParams& params, midas::TaskContext& ctx);

 private:
  struct Join;  // one join's decrypted state, for a handler's duration

  /// Runs a handler, counting its outcome in midas_api_tasks_total{type,outcome}.
  template <class F>
  midas::result<void> counted(std::string_view type, F&& run);

  /// Logs in after a successful join and publishes (balance, transactions, status 1).
  void login_and_publish(const Join& join, const nlohmann::json& identifier);
  /// attempt-join's on_failed: reports the failed join to Hermes (unless the merchant took it).
  void join_failed(const midas::Task& task, const midas::AttemptRecord& last,
                   const midas::Failure* failure);
  /// Counts and logs a failed join (with `fields`), then reports it to Hermes; a report Hermes
  /// refused is logged, not thrown.
  void report_failed_join(const Join& join, int midas_code, const std::string& slug,
                          nlohmann::json fields);
  /// The final-failure calls to Hermes (status, consents, credentials); throws when one fails.
  void send_failure_report(const Join& join, int midas_code, const std::string& slug);
  /// join-callback: checkpoints "failing", then report_failed_join.
  void fail_join(const Join& join, int midas_code, const std::string& slug,
                 midas::TaskContext& ctx);

  JoinDeps deps_;
  midas::RetryPolicy policy_;
};

}  // namespace midas_api
