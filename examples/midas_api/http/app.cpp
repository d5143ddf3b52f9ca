// SPDX-License-Identifier: MIT
#include "http/app.hpp"

#include <httplib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <random>
#include <regex>
#include <thread>

#include "agents/builtin.hpp"
#include "agents/login_retry.hpp"
#ifdef MIDAS_API_HAS_REDIS
#include "agents/redis_login_retry.hpp"
#endif
#include "crypto/base64.hpp"
#include "crypto/credentials.hpp"
#include "http/errors.hpp"

namespace midas_api {
namespace {

using Clock = std::chrono::steady_clock;

// Per-request state of the thread serving it (cpp-httplib serves a request on one thread).
thread_local Clock::time_point t_start{};
thread_local bool t_started = false;
thread_local bool t_routed = false;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::optional<std::string> param(const httplib::Request& req, const char* key) {
  if (!req.has_param(key)) return std::nullopt;
  std::string v = req.get_param_value(key);
  if (v.empty()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> int_param(const httplib::Request& req, const char* key) {
  auto v = param(req, key);
  if (!v) return std::nullopt;
  auto n = parse_int64(*v);
  if (!n) throw bad_request(std::string("Parameter \"") + key + "\" must be an integer.");
  return n;
}

QueryRequest parse_query(const httplib::Request& req, std::string slug) {
  QueryRequest q;
  q.slug = std::move(slug);
  auto credentials = param(req, "credentials");
  if (!credentials) throw bad_request("Missing required parameter \"credentials\".");
  q.encrypted_credentials = crypto::spaces_to_plus(*credentials);
  auto id = int_param(req, "scheme_account_id");
  if (!id) throw bad_request("Missing required parameter \"scheme_account_id\".");
  q.user.scheme_account_id = *id;
  if (auto user_set = param(req, "user_set")) {
    if (!crypto::is_valid_utf8(*user_set) || user_set->size() > 1024) {
      throw bad_request("Parameter \"user_set\" must be UTF-8 text of at most 1024 bytes.");
    }
    q.user.user_set = *user_set;
  } else if (auto user_id = int_param(req, "user_id")) {
    q.user.user_set = std::to_string(*user_id);
  } else {
    throw bad_request("Please provide either \"user_set\" or \"user_id\" parameters");
  }
  if (auto status = int_param(req, "status")) {
    if (*status < -1'000'000 || *status > 1'000'000) {
      throw bad_request("Parameter \"status\" is out of range.");
    }
    q.user.status = static_cast<int>(*status);
  }
  if (auto jt = int_param(req, "journey_type")) {
    if (*jt < 0 || *jt > 4) {
      throw bad_request(
          "Parameter \"journey_type\" must be 0 (join), 1 (link), 2 (add), 3 (update) or 4 "
          "(removed).");
    }
    q.user.journey_type = static_cast<JourneyType>(*jt);
  }
  q.user.bink_user_id = int_param(req, "bink_user_id");
  std::string tid = req.get_header_value("transaction");
  if (tid.empty() || !crypto::is_valid_utf8(tid) || tid.size() > 200) tid = new_transaction_id();
  q.user.tid = std::move(tid);
  return q;
}

std::string status_message(int status) {
  switch (status) {
    case 400:
      return "Bad request.";
    case 404:
      return "Not found.";
    case 405:
      return "Method not allowed.";
    case 408:
      return "Request timeout.";
    case 413:
      return "Payload too large.";
    case 414:
      return "Request URI too long.";
    case 416:
      return "Range not satisfiable.";
    case 431:
      return "Request header fields too large.";
    default:
      return "HTTP error " + std::to_string(status) + ".";
  }
}

}  // namespace

std::optional<std::int64_t> parse_int64(std::string_view s) {
  std::int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string slug_label(const Services& s, const httplib::Request& req) {
  if (req.matches.size() < 2) return "unknown";
  const AgentInfo* info = s.agents.find(req.matches[1].str());
  return info ? info->slug : "unknown";
}

std::string new_transaction_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(32, '0');
  for (char& c : s) c = kHex[rng() & 15u];
  return s;
}

void write_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

nlohmann::json error_body(const AgentError& e, const data::ErrorTable& table) {
  std::string message = e.message();
  if (message.empty()) {
    if (const data::ErrorInfo* info = table.by_class(e.error_class())) message = info->message;
  }
  return {{"message", message}, {"code", e.code()}, {"name", e.name()}};
}

std::function<void(const httplib::Request&, httplib::Response&)> guarded(
    Services& services, std::string endpoint, RouteHandler handler,
    std::function<std::string(const httplib::Request&)> slug_of) {
  return [&services, endpoint = std::move(endpoint), handler = std::move(handler),
          slug_of = std::move(slug_of)](const httplib::Request& req, httplib::Response& res) {
    const Clock::time_point start = t_started ? t_start : Clock::now();
    t_routed = true;
    try {
      handler(req, res);
    } catch (const RequestError& e) {
      write_json(res, e.status(), {{"message", e.what()}});
    } catch (const AgentError& e) {
      try {
        services.log.info("agent error", {{"endpoint", endpoint},
                                          {"code", e.code()},
                                          {"error", e.what()},
                                          {"root", e.root().error_class()}});
        write_json(res, e.code(), error_body(e, services.data->errors));
      } catch (...) {
        res.status = 520;
        res.set_content(
            R"({"message":"An unknown error has occurred.","code":520,"name":"Unknown error"})",
            "application/json");
      }
    } catch (const std::exception& e) {
      services.log.error("unexpected error", {{"endpoint", endpoint}, {"error", e.what()}});
      write_json(res, 520, error_body(AgentError(errors::unknown), services.data->errors));
    } catch (...) {
      services.log.error("unexpected error",
                         {{"endpoint", endpoint}, {"error", "non-standard exception"}});
      write_json(res, 520, error_body(AgentError(errors::unknown), services.data->errors));
    }
    try {
      const std::string slug = slug_of ? slug_of(req) : std::string();
      services.metrics.observe_request(slug, endpoint, res.status, seconds_since(start));
    } catch (...) {
    }
  };
}

void install_routes(httplib::Server& server, Services& s, ServerMode mode) {
  server.set_payload_max_length(kMaxBodyBytes);
  server.set_keep_alive_max_count(1000);
  // Small JSON answers: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms per response.
  server.set_tcp_nodelay(true);
  server.set_read_timeout(std::chrono::seconds{10});
  server.set_write_timeout(std::chrono::seconds{10});
  const int threads = s.config.http_threads;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };

  server.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_start = Clock::now();
    t_started = true;
    t_routed = false;
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Bodies for the statuses cpp-httplib produces itself (unknown route 404, 413, 414, bad
  // request line 400): always JSON.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([&s](const httplib::Request&, httplib::Response& res) {
        // Requests no route took are counted here, before the answer is written (the logger
        // runs after, too late for a client that reads /metrics right away).
        if (!t_routed) {
          try {
            s.metrics.observe_request("", "unmatched", res.status,
                                      t_started ? seconds_since(t_start) : 0.0);
          } catch (...) {
          }
          t_routed = true;
        }
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        write_json(res, res.status, {{"message", status_message(res.status)}});
        return httplib::Server::HandlerResponse::Handled;
      }));

  // A safety net only: guarded() already catches everything a route throws.
  server.set_exception_handler(
      [&s](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        s.log.error("exception escaped a route");
        write_json(res, 520, error_body(AgentError(errors::unknown), s.data->errors));
      });

  server.set_logger([&s](const httplib::Request& req, const httplib::Response& res) {
    try {
      const double seconds = t_started ? seconds_since(t_start) : 0.0;
      if (s.log.enabled(Level::info)) {
        // The path only: query strings carry credentials.
        const std::string path = req.path.size() > 200 ? req.path.substr(0, 200) + "..." : req.path;
        s.log.info("request", {{"method", req.method},
                               {"path", path},
                               {"status", res.status},
                               {"duration_ms", seconds * 1000},
                               {"transaction", req.get_header_value("transaction")}});
      }
    } catch (...) {
    }
    t_started = false;
    t_routed = false;
  });

  // --- operations -------------------------------------------------------------------------------
  server.Get("/healthz", guarded(s, "healthz", [](const httplib::Request&, httplib::Response& res) {
               write_json(res, 200, "");
             }));

  server.Get(
      "/readyz", guarded(s, "readyz", [&s](const httplib::Request&, httplib::Response& res) {
        auto stats = s.queue->stats(std::nullopt);
        if (!stats) {
          write_json(res, 503, {{"message", "Backend not reachable: " + stats.error().message()}});
          return;
        }
        write_json(res, 200, {{"status", "ready"}});
      }));

  server.Get(
      "/metrics", guarded(s, "metrics", [&s](const httplib::Request&, httplib::Response& res) {
        std::vector<Metrics::Gauge> gauges;
        Metrics::Gauge depth{
            "midas_api_queue_tasks", "Tasks in the midas backend by queue and status.", {}};
        Metrics::Gauge up{
            "midas_api_backend_up", "1 when the backend answered the stats call.", {}};
        auto stats = s.queue->stats(std::nullopt);
        if (stats) {
          for (const auto& q : stats.value().queues) {
            for (auto [status, n] : {std::pair<const char*, std::size_t>{"pending", q.pending},
                                     {"running", q.running},
                                     {"retrying", q.retrying},
                                     {"succeeded", q.succeeded},
                                     {"failed", q.failed},
                                     {"cancelled", q.cancelled}}) {
              depth.samples.push_back(
                  {{{"queue", q.queue}, {"status", status}}, static_cast<double>(n)});
            }
          }
        }
        up.samples.push_back({{}, stats ? 1.0 : 0.0});
        Metrics::Gauge pub{
            "midas_api_publish_queue_depth", "Hermes/Hades calls waiting to be sent.", {}};
        pub.samples.push_back({{}, static_cast<double>(s.publisher->depth())});
        gauges.push_back(std::move(depth));
        gauges.push_back(std::move(up));
        gauges.push_back(std::move(pub));
        res.status = 200;
        res.set_content(s.metrics.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
      }));

  install_join_routes(server, s, mode);
  if (mode == ServerMode::worker) return;

  server.Get("/error_reference",
             guarded(s, "error_reference", [&s](const httplib::Request&, httplib::Response& res) {
               nlohmann::json out = nlohmann::json::object();
               for (const auto& e : s.data->errors.errors) {
                 out[e.class_name] = {{"code", e.code}, {"message", e.message}, {"name", e.name}};
               }
               write_json(res, 200, out);
             }));

  server.Get("/agents", guarded(s, "agents", [&s](const httplib::Request&, httplib::Response& res) {
               nlohmann::json out = nlohmann::json::object();
               for (const auto& [slug, info] : s.agents.all()) out[slug] = info.credential_fields;
               write_json(res, 200, out);
             }));

  server.Post(
      "/agent_questions",
      guarded(s, "agent_questions", [&s](const httplib::Request& req, httplib::Response& res) {
        std::vector<std::pair<std::string, std::string>> fields;
        const std::string type = req.get_header_value("Content-Type");
        if (type.starts_with("multipart/form-data")) {
          for (const auto& [name, part] : req.files) fields.emplace_back(name, part.content);
        } else if (type.starts_with("application/json")) {
          auto j = nlohmann::json::parse(req.body, nullptr, false);
          if (j.is_discarded() || !j.is_object()) {
            throw bad_request("The body must be a JSON object or form fields.");
          }
          for (const auto& [k, v] : j.items()) {
            fields.emplace_back(k, v.is_string() ? v.get<std::string>() : dump_json(v));
          }
        } else {
          for (const auto& [k, v] : req.params) fields.emplace_back(k, v);
        }
        std::optional<std::string> slug;
        nlohmann::json answers = nlohmann::json::object();
        for (const auto& [k, v] : fields) {
          if (!crypto::is_valid_utf8(k) || !crypto::is_valid_utf8(v)) {
            throw bad_request("Form fields must be UTF-8 text.");
          }
          if (k == "scheme_slug") {
            if (!slug) slug = v;
          } else if (!answers.contains(k)) {
            answers[k] = v;
          }
        }
        if (!slug || slug->empty()) throw bad_request("Missing required field \"scheme_slug\".");
        if (!s.agents.find(*slug)) throw no_such_agent();
        write_json(res, 200, answers);
      }));

  // --- the read journeys ----------------------------------------------------------------------
  for (const char* endpoint : {"balance", "transactions", "account_overview"}) {
    const std::string e = endpoint;
    server.Get(std::string(R"(/([^/]+)/)") + endpoint,
               guarded(
                   s, e,
                   [&s, e](const httplib::Request& req, httplib::Response& res) {
                     QueryRequest q = parse_query(req, req.matches[1].str());
                     nlohmann::json out = e == "balance"        ? s.queries->balance(q)
                                          : e == "transactions" ? s.queries->transactions(q)
                                                                : s.queries->account_overview(q);
                     write_json(res, 200, out);
                   },
                   [&s](const httplib::Request& req) { return slug_label(s, req); }));
  }
}

std::unique_ptr<Services> build_services(Config config, const Logger& log) {
  auto s = std::make_unique<Services>(std::move(config), log);
  const Config& c = s->config;

  // Data files.
  std::filesystem::path dir = c.data_dir;
  if (dir.empty()) {
    auto found = data::find_data_dir();
    if (!found) throw ConfigError("MIDAS_DATA_DIR", found.error().message);
    dir = *found;
  }
  auto data = data::load_reference_data(dir);
  if (!data) throw StartupError("data files in " + dir.string() + ": " + data.error().message);
  // The agents' error classes and errors.json must agree (the contract is errors.json).
  for (const ErrorKind& k : errors::all) {
    const data::ErrorInfo* e = data->errors.by_class(k.error_class);
    if (!e || e->code != k.code || e->name != k.name) {
      throw StartupError("errors.json does not match the built-in error " +
                         std::string(k.error_class));
    }
  }
  if (data->errors.errors.size() != std::size(errors::all)) {
    throw StartupError("errors.json has error classes this build does not know");
  }
  s->data = std::make_shared<const data::ReferenceData>(std::move(*data));
  log.info("data files loaded", {{"dir", dir.string()}});

  // Backend.
  auto queue = midas::connect(c.backend_url, {.clock = nullptr, .log = log.midas_sink()});
  if (!queue) {
    throw ConfigError("MIDAS_BACKEND_URL",
                      "cannot open '" + c.backend_url + "': " + queue.error().message());
  }
  s->queue = std::move(queue).value();
  if (auto m = s->queue->migrate(); !m) {
    throw StartupError("backend migration failed: " + m.error().message());
  }

  // Login retry limit.
  // In Redis when the service has one (REDIS_URL, else a redis:// backend), as the original kept
  // its counters, so every midas-api process shares them; in process otherwise.
  const std::string retry_redis = !c.redis_url.empty()                    ? c.redis_url
                                  : c.backend_url.starts_with("redis://") ? c.backend_url
                                                                          : std::string{};
#ifdef MIDAS_API_HAS_REDIS
  if (!retry_redis.empty()) {
    try {
      s->retries = std::make_unique<RedisLoginRetryStore>(
          retry_redis, [&log](const std::string& m) { log.warning(m); });
    } catch (const std::invalid_argument& e) {
      throw ConfigError(c.redis_url.empty() ? "MIDAS_BACKEND_URL" : "REDIS_URL", e.what());
    }
  }
#else
  if (!retry_redis.empty()) {
    log.warning("login retry counts are kept in process: this build has no hiredis");
  }
#endif
  if (!s->retries) s->retries = std::make_unique<InProcessLoginRetryStore>();

  // Hermes/Hades.
  PublisherOptions po{.hermes_url = c.hermes_url,
                      .hades_url = c.hades_url,
                      .service_api_key = c.service_api_key,
                      .capacity = c.publish_queue_capacity,
                      .threads = c.publish_threads};
  try {
    s->publisher = std::make_unique<Publisher>(po, log, s->metrics);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(c.hermes_url.empty() ? "HADES_URL" : "HERMES_URL", e.what());
  }
  if (c.hermes_url.empty())
    log.warning("HERMES_URL is not set: Hermes status publishing is disabled");
  if (c.hades_url.empty())
    log.warning("HADES_URL is not set: Hades balance publishing is disabled");
  s->hermes = std::make_unique<HermesClient>(*s->publisher);

  // Agents.
  register_builtin_agents(s->agents, s->data, c, log);
  s->queries = std::make_unique<QueryJourneys>(JourneyDeps{.agents = s->agents,
                                                           .retries = *s->retries,
                                                           .hermes = *s->hermes,
                                                           .metrics = s->metrics,
                                                           .log = log,
                                                           .errors = s->data->errors,
                                                           .aes_key = c.aes_key});

  // The durable join.
  s->hermes_now = std::make_unique<HermesClient>(*s->publisher, HermesClient::Delivery::now);
  s->joins = std::make_unique<JoinJourneys>(
      JoinDeps{.agents = s->agents,
               .retries = *s->retries,
               .hermes = *s->hermes_now,
               .metrics = s->metrics,
               .log = log,
               .errors = s->data->errors,
               .aes_key = c.aes_key,
               .queue = *s->queue,
               .settings = {.backoff_base = c.retry_backoff_base,
                            .unit_seconds = c.retry_unit_seconds,
                            .max_retry_count = c.max_retry_count,
                            .max_callback_retries = c.max_callback_retry_count}});
  s->joins->register_tasks(s->registry);
  return s;
}

Services::~Services() { stop_worker(); }

void Services::start_worker() {
  if (worker || config.worker_concurrency <= 0) return;
  const auto lease = std::chrono::duration_cast<midas::Duration>(
      std::chrono::duration<double>(config.worker_lease_seconds));
  midas::WorkerOptions options;
  options.queues = {std::string(kJoinQueue)};
  options.concurrency = config.worker_concurrency;
  options.lease = lease;
  options.heartbeat_interval = std::max(midas::Duration{100}, lease / 4);
  options.rescue_interval =
      std::max(midas::Duration{100}, std::min(midas::Duration{1000}, lease / 4));
  options.log = log.midas_sink();
  worker = std::make_unique<midas::Worker>(*queue, registry, options);
  worker->start();
  start_pruner();
  log.info("join workers started", {{"queue", kJoinQueue},
                                    {"concurrency", config.worker_concurrency},
                                    {"worker", worker->id()},
                                    {"lease_seconds", config.worker_lease_seconds}});
}

void Services::stop_worker() {
  {
    const std::lock_guard lock(pruner_mutex);
    pruner_stop = true;
  }
  pruner_cv.notify_all();
  if (worker) {
    worker->stop();
    worker.reset();
  }
  if (pruner.joinable()) pruner.join();
}

void Services::start_pruner() {
  if (config.task_retention_seconds <= 0 || pruner.joinable()) return;
  pruner_stop = false;
  const auto retention = std::chrono::seconds{config.task_retention_seconds};
  // Every minute, or twice per retention period when that is shorter.
  const std::chrono::milliseconds half = retention / 2;
  const auto every =
      std::clamp<std::chrono::milliseconds>(half, std::chrono::seconds{1}, std::chrono::minutes{1});
  pruner = std::thread([this, retention, every] {
    std::unique_lock lock(pruner_mutex);
    while (!pruner_cv.wait_for(lock, every, [this] { return pruner_stop; })) {
      lock.unlock();
      std::size_t total = 0;
      for (;;) {  // in slices, so a backlog does not hold the backend for long
        {
          const std::lock_guard stopping(pruner_mutex);
          if (pruner_stop) break;
        }
        auto pruned = queue->prune(queue->clock().now() - retention, 1000);
        if (!pruned) {
          log.warning("pruning finished tasks failed; trying again later",
                      {{"error", pruned.error().message()}});
          break;
        }
        total += pruned.value();
        if (pruned.value() < 1000) break;
      }
      if (total > 0) {
        log.info("pruned finished tasks",
                 {{"tasks", total}, {"older_than_seconds", retention.count()}});
      }
      lock.lock();
    }
  });
}

Server::Server(std::unique_ptr<Services> services, const std::string& host, int port,
               ServerMode mode)
    : services_(std::move(services)), http_(std::make_unique<httplib::Server>()) {
  install_routes(*http_, *services_, mode);
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
    if (port_ < 0) throw StartupError("cannot bind " + host + " to a free port");
  } else {
    if (!http_->bind_to_port(host, port)) {
      throw StartupError("cannot bind " + host + ":" + std::to_string(port));
    }
    port_ = port;
  }
}

Server::~Server() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void Server::run() {
  listening_ = true;
  if (!stop_requested_) http_->listen_after_bind();
  listening_ = false;
}

void Server::start() {
  listening_ = true;
  thread_ = std::thread([this] {
    if (!stop_requested_) http_->listen_after_bind();
    listening_ = false;
  });
  for (int i = 0; i < 5000 && !http_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

void Server::stop() {
  stop_requested_ = true;
  const std::lock_guard lock(stop_mutex_);
  // A stop() before listen_after_bind() set is_running would be lost: wait for it briefly.
  for (int i = 0; i < 2000 && listening_ && !http_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  http_->stop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  if (services_) services_->stop_worker();
  if (services_ && services_->publisher) services_->publisher->stop();
}

}  // namespace midas_api
