// SPDX-License-Identifier: MIT
// midas-bench: measure a backend with the workloads of docs/benchmarks.md (enqueue, drain, retry,
// latency, crash), defined as the peer benchmark defines them so the figures compare.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <iostream>

#include "tool_support.hpp"
#include "workloads.hpp"

namespace {

using midas::tools::exit_failure;
using midas::tools::exit_ok;
using midas::tools::exit_usage;

std::string own_path(const char* argv0) {
  std::array<char, 4096> buf{};
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n > 0) return std::string(buf.data(), static_cast<std::size_t>(n));
  return argv0;
}

int usage_error(const std::string& message) {
  std::cerr << "midas-bench: error: " << message << "\n";
  return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  midas::bench::Options o;
  std::string workload = "all";
  bool json = false;
  int timeout_s = 300;
  double kill_after_s = 1.0;
  bool worker_child = false;
  std::string child_queue;
  std::string child_runs_file;
  int child_task_ms = 50;

  CLI::App app{
      "midas-bench: measure a midas backend with the workloads of docs/benchmarks.md.\n"
      "Each workload runs on a fresh queue (bench-<workload>-<random>) and leaves it empty.",
      "midas-bench"};
  app.footer(
      "Workloads: enqueue (N one at a time, then N in batches of 1000), drain (N queued no-op "
      "tasks, one\nworker with C slots), retry (N/4 tasks failing attempts 1 and 2), latency "
      "(500 tasks at 100/s to\nan idle worker), crash (2000 tasks of 50 ms; the worker process "
      "is SIGKILLed after 1 s and\nanother started). crash needs a server: memory:// lives "
      "in one process and is reported unsupported.\nExit status: 0 every check passed, 1 a "
      "check failed (tasks lost, wrong run counts), 2 usage.");
  app.add_option("--url", o.url, "Backend URL (default: $MIDAS_URL)")->envname("MIDAS_URL");
  app.add_option("--workload", workload, "enqueue, drain, retry, latency, crash or all")
      ->check(CLI::IsMember({"enqueue", "drain", "retry", "latency", "crash", "all"}));
  app.add_option("--tasks", o.tasks, "N: tasks for enqueue and drain; retry uses N/4")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}));
  app.add_option("--concurrency", o.concurrency, "Worker slots (default 8)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--prefetch", o.prefetch,
                 "Tasks the worker claims ahead of its free slots (default -1: adaptive)")
      ->check(CLI::Range(-1, 100'000));
  app.add_flag("--json", json, "One JSON object per workload, one per line");
  app.add_option("--batch-size", o.batch_size, "Tasks per batch enqueue (default 1000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  app.add_option("--latency-tasks", o.latency_tasks, "Tasks of the latency workload (default 500)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--latency-rate", o.latency_rate, "Enqueues per second (default 100)")
      ->check(CLI::Range(0.1, 100000.0));
  app.add_option("--latency-scheduled", o.latency_scheduled,
                 "Tasks scheduled a day ahead in the latency queue first (default 0; "
                 "the cleanup cancels them one by one)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{200'000}));
  app.add_option("--crash-tasks", o.crash_tasks, "Tasks of the crash workload (default 2000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--crash-task-ms", o.crash_task_ms, "Each crash task's run time (default 50)")
      ->check(CLI::Range(0, 60'000));
  app.add_option("--crash-kill-after", kill_after_s,
                 "Seconds after the first start to kill the worker (default 1)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--timeout", timeout_s, "Longest wait for a workload's tasks, s (default 300)")
      ->check(CLI::Range(1, 86'400));
  app.add_flag("-v,--verbose", o.verbose, "Also print what midas logs");
  // The crash workload's worker process (this program, re-executed): not for people.
  app.add_flag("--worker-child", worker_child)->group("");
  app.add_option("--child-queue", child_queue)->group("");
  app.add_option("--child-runs-file", child_runs_file)->group("");
  app.add_option("--child-task-ms", child_task_ms)->group("");

  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string{"midas-bench: error: "} + e.what() +
           "\nRun with --help for more information.\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  if (o.url.empty()) {
    return usage_error(
        "no backend URL — pass --url URL or set MIDAS_URL (postgresql://user@host:5432/db, "
        "redis://host:6379/0 or memory://)");
  }
  if (worker_child) {
    return midas::bench::run_worker_child(o.url, child_queue, o.concurrency, child_task_ms,
                                          child_runs_file, o.verbose);
  }
  o.timeout = std::chrono::seconds{timeout_s};
  o.crash_kill_after = std::chrono::milliseconds{static_cast<std::int64_t>(kill_after_s * 1000.0)};
  o.self_exe = own_path(argv[0]);

  midas::tools::Connection conn;
  if (auto failed = midas::tools::connect_queue(o.url, o.verbose, conn)) {
    std::cerr << "midas-bench: error: " << failed->message << "\n";
    const bool usage =
        failed->code == midas::errc::invalid_url || failed->code == midas::errc::unsupported_scheme;
    return usage ? exit_usage : exit_failure;
  }
  auto stats = conn.queue->stats(std::nullopt);
  if (stats) {
    for (const auto& w : stats.value().durability_warnings) {
      std::cerr << "midas-bench: warning: " << w << "\n";
    }
  }

  std::vector<std::string> names;
  if (workload == "all") {
    names = midas::bench::workload_names();
  } else {
    names.push_back(workload);
  }
  std::vector<midas::bench::Result> results;
  bool all_ok = true;
  for (const auto& name : names) {
    if (!json) {
      std::cerr << "midas-bench: " << name << " on " << midas::tools::backend_name(o.url) << "..."
                << std::endl;
    }
    auto r = midas::bench::run_workload(name, *conn.queue, o, results, conn.logs.sink());
    all_ok = all_ok && r.ok;
    if (json) std::cout << r.fields.dump() << std::endl;
    results.push_back(std::move(r));
  }
  if (!json) {
    midas::tools::Table table{{"WORKLOAD", "BACKEND", "MEASURE", "RESULT"}};
    for (const auto& r : results) {
      const std::string w = r.fields.value("workload", "");
      const std::string b = r.fields.value("backend", "");
      for (const auto& [measure, value] : r.rows) table.add({w, b, measure, value});
      if (r.fields.contains("cleanup")) {
        table.add({w, b, "queue left behind", r.fields["cleanup"].get<std::string>()});
      }
    }
    table.print(std::cout);
    if (stats && !stats.value().durability_warnings.empty()) {
      std::cout << "\nnot durable as configured:\n";
      for (const auto& w : stats.value().durability_warnings) std::cout << "  - " << w << "\n";
    }
  }
  return all_ok ? exit_ok : exit_failure;
}
