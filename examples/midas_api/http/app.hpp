// SPDX-License-Identifier: MIT
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "agents/agent.hpp"
#include "config.hpp"
#include "crypto/reference_data.hpp"
#include "hermes/hermes.hpp"
#include "hermes/publisher.hpp"
#include "journeys/join.hpp"
#include "journeys/query.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "midas/queue.hpp"
#include "midas/registry.hpp"
#include "midas/worker.hpp"

namespace httplib {
class Server;
class Request;
struct Response;
}  // namespace httplib

/// The midas-api HTTP application: wiring, routes and the error model.
namespace midas_api {

/// Start-up failed for a reason other than a setting (backend unreachable, data files...).
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a process serves: the whole API (with workers when WORKER_CONCURRENCY > 0), or, for
/// `midas-api worker`, only the workers plus /healthz, /readyz, /metrics and /tasks.
enum class ServerMode { api, worker };

/** Everything the routes and the workers use, built once at start from the Config. */
struct Services {
  Config config;
  const Logger& log;
  Metrics metrics{};
  std::shared_ptr<const data::ReferenceData> data{};
  AgentRegistry agents{};
  std::unique_ptr<LoginRetryStore> retries{};
  std::unique_ptr<midas::Queue> queue{};  ///< From MIDAS_BACKEND_URL; /readyz asks it for stats.
  std::unique_ptr<Publisher> publisher{};
  std::unique_ptr<HermesClient> hermes{};
  std::unique_ptr<QueryJourneys> queries{};
  std::unique_ptr<HermesClient> hermes_now{};  ///< Delivery::now: the join tasks' client.
  std::unique_ptr<JoinJourneys> joins{};
  midas::Registry registry{};               ///< attempt-join and join-callback.
  std::unique_ptr<midas::Worker> worker{};  ///< Set by start_worker().
  std::thread pruner{};  ///< With the workers: prunes tasks finished TASK_RETENTION_SECONDS ago.
  std::mutex pruner_mutex{};
  std::condition_variable pruner_cv{};
  bool pruner_stop = false;

  Services(Config c, const Logger& l) : config(std::move(c)), log(l) {}
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  /// Starts `config.worker_concurrency` join workers on queue midas-retry (none when 0), and the
  /// pruner of finished tasks (unless TASK_RETENTION_SECONDS is 0).
  void start_worker();
  /// Stops the workers: running joins get 10 s to finish, then their leases lapse and another
  /// worker runs them again. Idempotent.
  void stop_worker();
  /// Starts the pruner alone (start_worker() does); stop_worker() stops it.
  void start_pruner();
};

/** Builds the services from `config`: loads the data files, connects the backend, registers the
 *  agents, starts the publisher. Throws ConfigError or StartupError with a message naming what
 *  is wrong. Logs what is enabled (publishing disabled without HERMES_URL/HADES_URL...). */
[[nodiscard]] std::unique_ptr<Services> build_services(Config config, const Logger& log);

/// One route's work: fill `res` or throw (RequestError, AgentError, anything).
using RouteHandler = std::function<void(const httplib::Request&, httplib::Response&)>;

/** Wraps `handler` so that nothing escapes as a bare 500: RequestError -> {"message"} with its
 *  status, AgentError -> {"message","code","name"} with status = code, anything else -> 520
 *  Unknown error (logged). Records the request in the metrics under (`slug` label from
 *  `slug_of(req)`, `endpoint`). */
[[nodiscard]] std::function<void(const httplib::Request&, httplib::Response&)> guarded(
    Services& services, std::string endpoint, RouteHandler handler,
    std::function<std::string(const httplib::Request&)> slug_of = {});

/** Installs every route of MIDAS_API.md and the server-wide handlers (JSON error bodies for
 *  404/413/414/400 from the HTTP parser, exception net, access log, limits: URI 8 KiB (compiled
 *  into cpp-httplib), body 1 MiB). ServerMode::worker: /healthz, /readyz, /metrics and /tasks only.
 */
void install_routes(httplib::Server& server, Services& services, ServerMode mode = ServerMode::api);

/** The join routes (POST /{slug}/join, /{slug}/register, /join/merchant/{slug}) and the task
 *  history (GET /tasks, /tasks/{id}); in worker mode only the latter. */
void install_join_routes(httplib::Server& server, Services& services, ServerMode mode);

/// The whole of `s` as a decimal integer; nullopt when it is empty or anything else.
[[nodiscard]] std::optional<std::int64_t> parse_int64(std::string_view s);

/// The metrics label of a route's `{slug}` (its first regex group): the agent's slug, or
/// "unknown" for a slug no agent has (so clients cannot create label values at will).
[[nodiscard]] std::string slug_label(const Services& services, const httplib::Request& req);

/// A new transaction id: 32 random hex digits (the original's uuid4().hex).
[[nodiscard]] std::string new_transaction_id();

/// Writes `body` as JSON with `status`.
void write_json(httplib::Response& res, int status, const nlohmann::json& body);

/// {"message","code","name"} of `e`, the message being the generic one when `e` has none.
[[nodiscard]] nlohmann::json error_body(const AgentError& e, const data::ErrorTable& table);

/// Largest request body accepted (413 beyond).
inline constexpr std::size_t kMaxBodyBytes = 1024 * 1024;

/** A running server for tests and main(): binds `host:port` (0 = any free port), serves on a
 *  background thread until stop() or destruction. */
class Server {
 public:
  /// Builds the services and the routes and binds; throws StartupError if it cannot bind.
  Server(std::unique_ptr<Services> services, const std::string& host, int port,
         ServerMode mode = ServerMode::api);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port.
  [[nodiscard]] int port() const noexcept { return port_; }
  /// Serves on the calling thread until stop().
  void run();
  /// Serves on a background thread; returns once the server accepts connections.
  void start();
  /// Stops serving (any thread, also from a signal-waiting thread), stops the workers and
  /// drains the publisher.
  void stop();
  /// The services (metrics, publisher...) for tests.
  [[nodiscard]] Services& services() noexcept { return *services_; }

 private:
  std::unique_ptr<Services> services_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<bool> listening_{false};
  std::atomic<bool> stop_requested_{false};
  std::mutex stop_mutex_;
  std::thread thread_;
};

}  // namespace midas_api
