// SPDX-License-Identifier: MIT
#include "journeys/join.hpp"

#include <chrono>
#include <exception>
#include <memory>

#include "agents/login_retry.hpp"
#include "crypto/credentials.hpp"
#include "journeys/query.hpp"

namespace midas_api {
namespace {

using nlohmann::json;

// Checkpoint steps. A task's checkpoint is {"step": <one of these>, ...}.
constexpr std::string_view kStepJoined = "joined";               // the merchant enrolled the user
constexpr std::string_view kStepAwaiting = "awaiting_callback";  // accepted; result comes later
constexpr std::string_view kStepPublished = "published";         // Hermes has the outcome
constexpr std::string_view kStepRescheduled = "rescheduled";     // JOIN_ERROR: join enqueued again
constexpr std::string_view kStepFailing = "failing";  // failed for good; report under way

std::string step_of(const midas::TaskContext& ctx) {
  const json& cp = ctx.saved_checkpoint();
  if (cp.is_object()) {
    if (auto it = cp.find("step"); it != cp.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

// Records `progress`; a lost lease means another worker owns the task now: stop here.
void checkpoint(midas::TaskContext& ctx, json progress) {
  if (auto r = ctx.checkpoint(std::move(progress)); !r) {
    throw std::system_error(r.error(), "join task checkpoint");
  }
}

bool has_card(const json& credentials) {
  return credential_text(credentials, "card_number").has_value() ||
         credential_text(credentials, "barcode").has_value();
}

// The consent ids in the credentials: "consents": [{"id": 1, ...}, ...].
std::vector<std::int64_t> consent_ids(const json& credentials) {
  std::vector<std::int64_t> ids;
  if (!credentials.is_object()) return ids;
  auto it = credentials.find("consents");
  if (it == credentials.end() || !it->is_array()) return ids;
  for (const auto& c : *it) {
    if (!c.is_object()) continue;
    auto id = c.find("id");
    if (id != c.end() && id->is_number_integer()) ids.push_back(id->get<std::int64_t>());
  }
  return ids;
}

// The join's user as Hermes sees it (no credentials): journey JOIN, status 442 as the original.
UserInfo public_user(const AttemptJoinParams& p, const std::string& message_uid) {
  UserInfo u;
  u.scheme_account_id = p.scheme_account_id;
  u.user_set = p.user_set;
  u.channel = p.channel;
  u.journey_type = JourneyType::join;
  u.status = hermes_status::join_async_in_progress;
  u.tid = p.tid;
  u.message_uid = message_uid;
  return u;
}

std::string describe(int code) {
  for (const ErrorKind& k : errors::all) {
    if (k.code == code) return std::to_string(code) + " " + std::string(k.name);
  }
  return std::to_string(code);
}

}  // namespace

// --- policy and classification -------------------------------------------------------------------

midas::RetryPolicy join_retry_policy(const JoinSettings& settings) {
  const auto unit = std::chrono::duration_cast<midas::Duration>(
      std::chrono::duration<double>(settings.unit_seconds));
  midas::RetryPolicy policy = midas::RetryPolicy::exponential(settings.backoff_base, unit);
  policy.max_attempts(settings.max_retry_count + 1)
      .jitter(midas::Jitter::none)
      .cap(std::chrono::hours{24 * 7});
  return policy;
}

bool is_retryable_join_code(int code) noexcept {
  switch (code) {
    case 429:  // RetryLimitReachedError
    case 520:  // UnknownError
    case 530:  // EndSiteDownError
    case 531:  // IPBlockedError
    case 535:  // NotSentError
    case 537:  // ServiceConnectionError
      return true;
    default:
      return false;
  }
}

int midas_code_of(const midas::Failure& failure) {
  const auto& chain = failure.chain();  // outermost first
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    try {
      std::rethrow_exception(*it);
    } catch (const AgentError& e) {
      return e.root().code();
    } catch (...) {
    }
  }
  return errors::unknown.code;
}

midas::ErrorClassifier join_classifier() {
  midas::ErrorClassifier classifier;
  classifier.when([](const midas::Failure& f) -> std::optional<midas::Decision> {
    return is_retryable_join_code(midas_code_of(f)) ? midas::Decision::retry()
                                                    : midas::Decision::fail();
  });
  return classifier;
}

int join_failure_status(int midas_code, const json& credentials) {
  if (midas_code == errors::account_already_exists.code) {
    return hermes_status::account_already_exists;
  }
  if (midas_code == hermes_status::join_weak_password) return hermes_status::join_weak_password;
  return has_card(credentials) ? hermes_status::registration_failed : hermes_status::enrol_failed;
}

// --- params ------------------------------------------------------------------------------------

void to_json(json& j, const AttemptJoinParams& p) {
  j = json{{"scheme_slug", p.scheme_slug},
           {"tid", p.tid},
           {"user_info",
            {{"scheme_account_id", p.scheme_account_id},
             {"user_set", p.user_set},
             {"channel", p.channel},
             {"journey_type", static_cast<int>(JourneyType::join)},
             {"status", hermes_status::join_async_in_progress},
             {"credentials", p.credentials}}},
           {"callback_retries", p.callback_retries}};
}

void from_json(const json& j, AttemptJoinParams& p) {
  j.at("scheme_slug").get_to(p.scheme_slug);
  j.at("tid").get_to(p.tid);
  const json& u = j.at("user_info");
  u.at("scheme_account_id").get_to(p.scheme_account_id);
  u.at("user_set").get_to(p.user_set);
  p.channel = u.value("channel", std::string{});
  u.at("credentials").get_to(p.credentials);
  p.callback_retries = j.value("callback_retries", 0);
}

void to_json(json& j, const JoinCallbackParams& p) {
  j = json{
      {"scheme_slug", p.scheme_slug}, {"scheme_account_id", p.scheme_account_id}, {"body", p.body}};
}

void from_json(const json& j, JoinCallbackParams& p) {
  j.at("scheme_slug").get_to(p.scheme_slug);
  j.at("scheme_account_id").get_to(p.scheme_account_id);
  p.body = j.at("body");
}

// --- the journeys ------------------------------------------------------------------------------

/// One join as a handler sees it: the agent, the decrypted credentials (never logged), and the
/// public user info Hermes gets.
struct JoinJourneys::Join {
  const AgentInfo* agent = nullptr;
  UserInfo user{};       ///< With the decrypted credentials.
  UserInfo published{};  ///< The same without them.
};

JoinJourneys::JoinJourneys(JoinDeps deps)
    : deps_(std::move(deps)), policy_(join_retry_policy(deps_.settings)) {}

void JoinJourneys::register_tasks(midas::Registry& registry) {
  const midas::TypeOptions options{.queue = std::string(kJoinQueue),
                                   .retry = policy_,
                                   .classifier = join_classifier(),
                                   .priority = 0};
  midas::TypeOptions join_options = options;
  // The failure report runs from the worker's on_failed, so it also happens when the worker
  // running the last attempt died (an expired lease: no handler runs for that task again).
  join_options.on_failed = [this](const midas::Task& task, const midas::AttemptRecord& last,
                                  const midas::Failure* failure) {
    deps_.metrics.task(kAttemptJoin, "failed");
    join_failed(task, last, failure);
  };
  registry.add<AttemptJoinParams>(
      std::string(kAttemptJoin),
      [this](const AttemptJoinParams& p, midas::TaskContext& ctx) {
        return counted(kAttemptJoin, [&] { return attempt_join(p, ctx); });
      },
      join_options);
  registry.add<JoinCallbackParams>(
      std::string(kJoinCallback),
      [this](const JoinCallbackParams& p, midas::TaskContext& ctx) {
        return counted(kJoinCallback, [&] { return join_callback(p, ctx); });
      },
      options);
}

template <class F>
midas::result<void> JoinJourneys::counted(std::string_view type, F&& run) {
  try {
    midas::result<void> r = run();
    deps_.metrics.task(type, r ? "succeeded" : "decided");
    return r;
  } catch (...) {
    deps_.metrics.task(type, "error");  // the classifier decides: retry or fail
    throw;
  }
}

midas::result<midas::Enqueued> JoinJourneys::enqueue_join(const AttemptJoinParams& params,
                                                          midas::Duration delay) {
  midas::TaskSpec spec;
  spec.type = std::string(kAttemptJoin);
  spec.params = params;
  spec.queue = std::string(kJoinQueue);
  spec.delay = delay;
  spec.unique_key = std::to_string(params.scheme_account_id);
  spec.max_attempts = policy_.max_attempts();
  return deps_.queue.enqueue(spec);
}

midas::result<midas::Enqueued> JoinJourneys::enqueue_callback(const JoinCallbackParams& params) {
  midas::TaskSpec spec;
  spec.type = std::string(kJoinCallback);
  spec.params = params;
  spec.queue = std::string(kJoinQueue);
  if (auto uid = credential_text(params.body, "message_uid"); uid && uid->size() <= 200) {
    spec.unique_key = "callback:" + *uid;
  }
  spec.max_attempts = policy_.max_attempts();
  return deps_.queue.enqueue(spec);
}

midas::result<void> JoinJourneys::attempt_join(const AttemptJoinParams& p,
                                               midas::TaskContext& ctx) {
  const std::string step = step_of(ctx);
  const std::string& task_id = ctx.task().id;
  Join join;
  join.published = public_user(p, task_id);  // the merchant echoes the task id in its callback
  const std::string& slug = p.scheme_slug;
  const auto fields = [&](json extra = json::object()) {
    extra["task"] = task_id;
    extra["slug"] = slug;
    extra["scheme_account_id"] = p.scheme_account_id;
    extra["attempt"] = ctx.attempt();
    extra["transaction"] = p.tid;
    return extra;
  };

  if (step == kStepPublished || step == kStepAwaiting) return midas::success();  // crash after

  // (A failure decided here is reported to Hermes by join_failed, the type's on_failed.)
  join.agent = deps_.agents.find(slug);
  if (join.agent == nullptr) {
    deps_.log.error("join: no agent for the slug", fields());
    return ctx.fail("no agent is registered for '" + slug + "'");
  }
  auto credentials = crypto::decrypt_credentials(p.credentials, deps_.aes_key);
  if (!credentials) {
    return ctx.fail("the join's credentials cannot be decrypted: " + credentials.error().message);
  }
  join.user = join.published;
  join.user.credentials = std::move(*credentials);

  json identifier = json::object();
  if (step == kStepJoined) {
    identifier = ctx.saved_checkpoint().value("identifier", json::object());
    deps_.log.info("join: resuming after the merchant accepted", fields());
  } else {
    JoinResult r;
    try {
      std::unique_ptr<Agent> agent = join.agent->factory(join.agent->context, join.user);
      if (!agent) throw AgentError(errors::configuration, "No agent was created.");
      r = agent->join();
    } catch (...) {
      const int code = midas_code_of(midas::Failure{std::current_exception()});
      const bool retry = is_retryable_join_code(code) && ctx.attempt() < ctx.task().max_attempts;
      if (retry) {
        deps_.metrics.join(slug, "retry");
        deps_.log.warning("join: attempt failed, will retry",
                          fields({{"code", code}, {"error", describe(code)}}));
      }
      throw;  // the classifier decides; a final failure goes to join_failed
    }
    // The merchant took the join: record it at once, so that a re-run does not join again.
    if (r.expecting_callback) {
      checkpoint(ctx, {{"step", kStepAwaiting}});
      deps_.metrics.join(slug, "accepted");
      deps_.log.info("join: accepted by the merchant, waiting for its callback", fields());
      return midas::success();
    }
    identifier = r.identifier.is_object() ? r.identifier : json::object();
    checkpoint(ctx, {{"step", kStepJoined}, {"identifier", identifier}});
  }
  login_and_publish(join, identifier);
  checkpoint(ctx, {{"step", kStepPublished}});
  deps_.metrics.join(slug, "success");
  deps_.log.info("join: succeeded and published", fields());
  return midas::success();
}

midas::result<void> JoinJourneys::join_callback(const JoinCallbackParams& p,
                                                midas::TaskContext& ctx) {
  const std::string step = step_of(ctx);
  if (step == kStepPublished || step == kStepRescheduled) return midas::success();
  const std::string message_uid = credential_text(p.body, "message_uid").value_or("");
  json fields{{"task", ctx.task().id},
              {"slug", p.scheme_slug},
              {"scheme_account_id", p.scheme_account_id},
              {"message_uid", message_uid}};

  // The join this callback answers: the attempt-join task whose id the merchant echoes back.
  if (message_uid.empty()) {
    deps_.log.error("join callback without a message_uid", fields);
    return ctx.fail("the callback has no message_uid, so it matches no join");
  }
  auto found = deps_.queue.get(message_uid);
  if (!found && midas::is_transient(found.error())) return found.error();  // try again
  AttemptJoinParams jp;
  bool matches = false;
  if (found && found.value().type == kAttemptJoin) {
    try {
      jp = found.value().params.get<AttemptJoinParams>();
      matches = jp.scheme_account_id == p.scheme_account_id && jp.scheme_slug == p.scheme_slug;
    } catch (const json::exception&) {
    }
  }
  if (!matches) {
    deps_.log.error("join callback matches no join task of this scheme account", fields);
    return ctx.fail("no attempt-join task " + message_uid + " for scheme account " +
                    std::to_string(p.scheme_account_id) + " of " + p.scheme_slug);
  }
  fields["transaction"] = jp.tid;

  Join join;
  join.published = public_user(jp, message_uid);
  join.agent = deps_.agents.find(p.scheme_slug);
  if (join.agent == nullptr) return ctx.fail("no agent is registered for '" + p.scheme_slug + "'");
  auto credentials = crypto::decrypt_credentials(jp.credentials, deps_.aes_key);
  if (!credentials) {
    fail_join(join, errors::unknown.code, p.scheme_slug, ctx);
    return ctx.fail("the join's credentials cannot be decrypted: " + credentials.error().message);
  }
  join.user = join.published;
  join.user.credentials = std::move(*credentials);
  if (step == kStepFailing) {
    send_failure_report(join, ctx.saved_checkpoint().value("code", errors::unknown.code),
                        p.scheme_slug);
    return ctx.fail("join failed; reported again after a restart");
  }

  JoinResult result;
  try {
    std::unique_ptr<Agent> agent = join.agent->factory(join.agent->context, join.user);
    if (!agent) throw AgentError(errors::configuration, "No agent was created.");
    result = agent->join_callback(p.body);
  } catch (...) {
    const midas::Failure failure{std::current_exception()};
    const int code = midas_code_of(failure);
    std::string merchant_code;
    if (auto codes = p.body.find("error_codes");
        codes != p.body.end() && codes->is_array() && !codes->empty() && (*codes)[0].is_object()) {
      merchant_code = credential_text((*codes)[0], "code").value_or("");
    }
    if (merchant_code == "JOIN_ERROR" &&
        jp.callback_retries < deps_.settings.max_callback_retries) {
      AttemptJoinParams next = jp;
      next.callback_retries = jp.callback_retries + 1;
      const midas::Duration delay = policy_.base_delay(next.callback_retries);
      MIDAS_TRY(enqueued, enqueue_join(next, delay));
      checkpoint(ctx, {{"step", kStepRescheduled}, {"task", enqueued.id}});
      deps_.metrics.join(p.scheme_slug, "retry");
      fields["next_task"] = enqueued.id;
      fields["callback_retry"] = next.callback_retries;
      fields["delay_ms"] = delay.count();
      deps_.log.warning("join callback: JOIN_ERROR, the join runs again", fields);
      return midas::success();
    }
    // The merchant's answer is final: no retry of this task would change it.
    fail_join(join, code, p.scheme_slug, ctx);
    return ctx.fail("the merchant reported a failed join: " + describe(code) + " (" +
                    failure.message() + ")");
  }

  // Success: the identifiers go to Hermes, the consents are confirmed, and the new member's
  // balance is published with status 1.
  json identifier = result.identifier.is_object() ? result.identifier : json::object();
  for (std::int64_t id : consent_ids(join.user.credentials)) {
    deps_.hermes.consent(join.published, id, consent_status::success);
  }
  login_and_publish(join, identifier);
  checkpoint(ctx, {{"step", kStepPublished}});
  deps_.metrics.join(p.scheme_slug, "success");
  deps_.log.info("join callback: joined and published", fields);
  return midas::success();
}

void JoinJourneys::login_and_publish(const Join& join, const json& identifier) {
  if (!identifier.empty()) deps_.hermes.put_credentials(join.published, identifier);

  // Log in as the new member: the join credentials plus what the merchant gave.
  UserInfo user = join.user;
  for (const auto& [k, v] : identifier.items()) user.credentials[k] = v;
  user.journey_type = JourneyType::update;
  user.from_join = true;
  std::unique_ptr<Agent> agent;
  try {
    agent = join.agent->factory(join.agent->context, user);
    if (!agent) throw AgentError(errors::configuration, "No agent was created.");
    login_with_limit(*agent, user, deps_.retries, [this](std::string_view cls) {
      const data::ErrorInfo* e = deps_.errors.by_class(cls);
      return e && e->system_action_required;
    });
    deps_.metrics.login(join.agent->slug, true);
  } catch (...) {
    const int code = midas_code_of(midas::Failure{std::current_exception()});
    deps_.metrics.login(join.agent->slug, false, code);
    deps_.log.warning("join: the login after the join failed; publishing a pending balance",
                      {{"scheme_account_id", join.published.scheme_account_id},
                       {"slug", join.agent->slug},
                       {"code", code},
                       {"transaction", join.published.tid}});
    deps_.hermes.balance(join.published, json{{"points", 0},
                                              {"value", 0},
                                              {"value_label", "Pending"},
                                              {"reward_tier", 0},
                                              {"scheme_account_id", user.scheme_account_id},
                                              {"user_set", user.user_set},
                                              {"points_label", "0"}});
    return;
  }
  if (auto id = agent->identifier(); id.is_object() && !id.empty() && id != identifier) {
    deps_.hermes.put_credentials(join.published, id);
  }
  int status = hermes_status::active;
  try {
    if (auto b = agent->balance()) deps_.hermes.balance(join.published, balance_json(*b, user));
    if (deps_.hermes.hades_enabled()) {
      const auto txs = agent->transactions();
      if (!txs.empty()) deps_.hermes.transactions(join.published, transactions_json(txs, user));
    }
  } catch (const AgentError& e) {
    if (e.root().code() == errors::service_connection.code) throw;  // Hades: try again
    status = errors::unknown.code;  // as the original: the join stands, publishing failed
  }
  deps_.hermes.status(join.published, status, std::string("join"));
}

void JoinJourneys::join_failed(const midas::Task& task, const midas::AttemptRecord& last,
                               const midas::Failure* failure) {
  json fields{{"task", task.id}, {"attempt", task.attempt}, {"decision", last.decision}};
  AttemptJoinParams p;
  try {
    p = task.params.get<AttemptJoinParams>();
  } catch (const json::exception& e) {
    deps_.log.error("join failed for good; its params are unreadable, nothing to report",
                    {{"task", task.id}, {"error", e.what()}});
    return;
  }
  fields["slug"] = p.scheme_slug;
  fields["scheme_account_id"] = p.scheme_account_id;
  fields["transaction"] = p.tid;
  std::string step;
  if (task.checkpoint.is_object()) step = task.checkpoint.value("step", "");
  if (step == kStepJoined || step == kStepPublished || step == kStepAwaiting) {
    // The merchant has the member: this is no failed join, only an outcome not published.
    deps_.log.error("join: the merchant took the join but its outcome could not be published",
                    fields);
    return;
  }
  Join join;
  join.published = public_user(p, task.id);
  join.agent = deps_.agents.find(p.scheme_slug);
  join.user = join.published;
  if (auto credentials = crypto::decrypt_credentials(p.credentials, deps_.aes_key)) {
    join.user.credentials = std::move(*credentials);
  }
  const int code = failure != nullptr ? midas_code_of(*failure) : errors::unknown.code;
  report_failed_join(join, code, p.scheme_slug, std::move(fields));
}

void JoinJourneys::report_failed_join(const Join& join, int midas_code, const std::string& slug,
                                      json fields) {
  fields["code"] = midas_code;
  fields["error"] = describe(midas_code);
  deps_.metrics.join(slug, "failed");
  deps_.log.error("join: failed for good; reporting to Hermes", fields);
  try {
    send_failure_report(join, midas_code, slug);
  } catch (const std::exception& e) {
    // Hermes did not take the report. The task fails anyway: a failed join is not retried
    // because Hermes is down. Operators see it in the log and in GET /tasks?status=failed.
    deps_.log.error("join: Hermes did not take the failure report",
                    {{"task", fields.value("task", json())}, {"error", e.what()}});
  }
}

void JoinJourneys::send_failure_report(const Join& join, int midas_code, const std::string& slug) {
  const json& credentials = join.user.credentials;
  deps_.hermes.join_failed(join.published, join_failure_status(midas_code, credentials), slug);
  for (std::int64_t id : consent_ids(credentials)) {
    deps_.hermes.consent(join.published, id, consent_status::failed);
  }
  deps_.hermes.delete_credentials(join.published,
                                  credential_text(credentials, "card_number").has_value());
}

void JoinJourneys::fail_join(const Join& join, int midas_code, const std::string& slug,
                             midas::TaskContext& ctx) {
  checkpoint(ctx, {{"step", kStepFailing}, {"code", midas_code}});
  report_failed_join(join, midas_code, slug,
                     {{"task", ctx.task().id},
                      {"slug", slug},
                      {"scheme_account_id", join.published.scheme_account_id},
                      {"attempt", ctx.attempt()},
                      {"transaction", join.published.tid}});
}

}  // namespace midas_api
