// SPDX-License-Identifier: MIT
#pragma once
/// midas-bench's workloads, defined as in issue 7 so they compare with the peers measured by
/// ../shared/peers (docs/benchmarks.md has the definitions and the JSON fields).

#include <cstddef>
#include <midas/midas.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace midas::bench {

/// Every knob of a bench run.
struct Options {
  std::string url;
  std::size_t tasks = 10000;  ///< N for enqueue and drain; retry uses N/4.
  int concurrency = 8;        ///< Worker slots.
  int prefetch = -1;          ///< WorkerOptions::prefetch; -1: adaptive.
  std::size_t batch_size = 1000;
  std::size_t latency_tasks = 500;
  double latency_rate = 100.0;  ///< Enqueues per second in the latency workload.
  /// Tasks scheduled a day ahead in the latency workload's queue before it starts: what a
  /// claim must pass over to find the due ones.
  std::size_t latency_scheduled = 0;
  std::size_t crash_tasks = 2000;
  int crash_task_ms = 50;
  Duration crash_kill_after{std::chrono::seconds{1}};
  Duration timeout{std::chrono::seconds{300}};  ///< Longest a workload waits for its tasks.
  bool verbose = false;
  std::string self_exe;  ///< This program, re-executed as the crash workload's worker.
};

/// What a workload measured. `fields` is the JSON object printed with --json (ordered as
/// documented); `rows` is the same for the table.
struct Result {
  nlohmann::ordered_json fields;
  std::vector<std::pair<std::string, std::string>> rows;
  bool ok = true;  ///< Every check of the workload passed (tasks lost, run counts, ...).
};

/// The names `--workload` accepts, in the order `all` runs them.
const std::vector<std::string>& workload_names();

/// Runs one workload on `queue` (a fresh queue name) and leaves that queue empty.
/// `previous` holds the results of earlier workloads of this run (retry compares with drain).
Result run_workload(const std::string& name, Queue& queue, const Options& options,
                    const std::vector<Result>& previous, const LogSink& log);

/// The crash workload's worker process: runs a Worker on `queue` and appends
/// "S|D <index> <epoch ms> <pid>" lines to `runs_file` when a task starts and ends; exits on
/// SIGTERM or SIGINT.
int run_worker_child(const std::string& url, const std::string& queue, int concurrency, int task_ms,
                     const std::string& runs_file, bool verbose);

}  // namespace midas::bench
