// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

/// In-process Prometheus metrics of midas-api, served by GET /metrics (text format 0.0.4).
namespace midas_api {

/** The service's counters and histograms. Thread-safe; every update takes one short mutex.
 *  Label values come from a small set (known slugs, fixed endpoint names, status codes) so the
 *  series count stays bounded: callers map user-supplied slugs to "unknown" first. */
class Metrics {
 public:
  /// The latency buckets (seconds) of midas_api_request_duration_seconds.
  static constexpr std::array<double, 14> kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};

  /// One HTTP request answered: midas_api_requests_total and the latency histogram.
  void observe_request(std::string_view slug, std::string_view endpoint, int status,
                       double seconds);
  /// One agent login: midas_api_login_success_total / midas_api_login_failure_total{code}.
  void login(std::string_view slug, bool success, int code = 0);
  /// One join outcome (accepted, retry, success, failed): midas_api_join_total{slug,outcome}.
  void join(std::string_view slug, std::string_view outcome);
  /// One task attempt outcome: midas_api_tasks_total{type,outcome}.
  void task(std::string_view type, std::string_view outcome);
  /// One outbound Hermes/Hades call: midas_api_publish_total{target,outcome} where outcome is
  /// sent, failed or dropped.
  void publish(std::string_view target, std::string_view outcome);

  /// A gauge sample computed at scrape time.
  struct Gauge {
    std::string name{};  ///< Full metric name.
    std::string help{};
    std::vector<std::pair<std::map<std::string, std::string>, double>> samples{};
  };

  /// The whole exposition text: every family (with # HELP and # TYPE even when empty), then
  /// `gauges`.
  [[nodiscard]] std::string render(const std::vector<Gauge>& gauges = {}) const;

  /// Current value of a counter series, for tests; 0 if absent. `labels` in declaration order.
  [[nodiscard]] double counter_value(std::string_view name,
                                     const std::vector<std::string>& labels) const;

 private:
  using Labels = std::vector<std::string>;
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct CounterFamily {
    std::string name;
    std::string help;
    std::vector<std::string> label_names;
    std::map<Labels, double> series{};
  };

  void add(CounterFamily& family, Labels labels, double v = 1);

  mutable std::mutex mutex_;
  CounterFamily requests_{
      "midas_api_requests_total", "HTTP requests answered.", {"slug", "endpoint", "status"}};
  CounterFamily login_success_{
      "midas_api_login_success_total", "Agent logins that succeeded.", {"slug"}};
  CounterFamily login_failure_{"midas_api_login_failure_total",
                               "Agent logins that failed, by Midas error code.",
                               {"slug", "code"}};
  CounterFamily join_{"midas_api_join_total", "Join outcomes.", {"slug", "outcome"}};
  CounterFamily tasks_{
      "midas_api_tasks_total", "Task attempts by type and outcome.", {"type", "outcome"}};
  CounterFamily publish_{"midas_api_publish_total",
                         "Hermes/Hades calls: sent (2xx), failed (error or non-2xx) or dropped "
                         "(publish queue full).",
                         {"target", "outcome"}};
  std::map<Labels, Histogram> latency_{};  // slug, endpoint, status
};

/// A Prometheus label value with \, " and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view v);

}  // namespace midas_api
