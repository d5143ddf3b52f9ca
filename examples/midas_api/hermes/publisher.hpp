// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "logging.hpp"
#include "metrics.hpp"

/// Fire-and-forget delivery of Hermes and Hades calls, off the request path.
namespace midas_api {

/// One outbound call, relative to the target's base URL.
struct OutboundCall {
  std::string target{};  ///< "hermes" or "hades".
  std::string method{};  ///< "POST", "PUT" or "DELETE".
  std::string path{};    ///< "/schemes/accounts/42/status" (appended to the base URL's path).
  std::string body{};    ///< JSON text; empty: no body.
  std::string tid{};     ///< Sent as the `transaction` header.
};

/// Where the publisher sends, and how much it buffers.
struct PublisherOptions {
  std::string hermes_url{};  ///< Base URL ("http://host:port/prefix"); empty: Hermes calls skipped.
  std::string hades_url{};   ///< Base URL; empty: Hades calls skipped.
  std::string service_api_key{};  ///< Non-empty: `Authorization: token <key>`.
  std::size_t capacity = 10000;   ///< Calls waiting; beyond this new calls are dropped.
  int threads = 2;                ///< Sending threads.
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{5000};
};

/** A bounded queue drained by its own threads. `submit` never blocks on the network: a slow or
 *  failing Hermes fills the queue, then new calls are dropped, counted
 *  (midas_api_publish_total{outcome="dropped"}) and logged. Failures (connection errors, non-2xx)
 *  are logged and counted, never retried (as the original). Thread-safe. */
class Publisher {
 public:
  Publisher(PublisherOptions options, const Logger& log, Metrics& metrics);
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  /// True when `target`'s base URL is configured.
  [[nodiscard]] bool enabled(std::string_view target) const noexcept;
  /// Queues `call`; false when its target is disabled or the queue is full (then dropped).
  bool submit(OutboundCall call);
  /** Sends `call` now, on the calling thread, past the queue: for callers that must know it
   *  arrived (the join task records its progress only after Hermes took the call). True on a
   *  2xx answer or when the target is disabled; false (logged, counted) otherwise. */
  [[nodiscard]] bool deliver(const OutboundCall& call);
  /// Calls waiting (not counting those being sent).
  [[nodiscard]] std::size_t depth() const;
  /// Waits until nothing is queued or in flight; false on timeout. For tests and shutdown.
  bool wait_idle(std::chrono::milliseconds timeout);
  /// Stops accepting calls, waits up to `drain` for the queue to empty, then stops the threads
  /// (what is left is dropped and logged). Idempotent; the destructor calls it.
  void stop(std::chrono::milliseconds drain = std::chrono::milliseconds{2000});

 private:
  void run();
  void stop_once(std::chrono::milliseconds drain);
  // Sends `call`; true on 2xx. Every failure (also an exception) is logged and counted here.
  bool send(const OutboundCall& call, struct ClientCache& clients);
  bool send_once(const OutboundCall& call, struct ClientCache& clients);

  struct Base {
    std::string origin{};  // scheme://host:port
    std::string prefix{};  // "/hermes" or ""
  };

  PublisherOptions options_;
  const Logger& log_;
  Metrics& metrics_;
  Base hermes_{};
  Base hades_{};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<OutboundCall> queue_;
  std::size_t in_flight_ = 0;
  // Dropped calls are logged once, then at most one line every 10 s with the count since (one
  // warning per drop wrote megabytes a second under load).
  std::size_t dropped_unlogged_ = 0;
  std::chrono::steady_clock::time_point drop_logged_at_{};
  bool accepting_ = true;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::once_flag stop_once_;
};

/** Splits "http://host:port/prefix/" into {"http://host:port", "/prefix"}; the scheme must be
 *  http or https. Throws std::invalid_argument otherwise. */
[[nodiscard]] std::pair<std::string, std::string> split_base_url(std::string_view url);

}  // namespace midas_api
