// SPDX-License-Identifier: MIT
#include "workloads.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "tool_support.hpp"

extern char** environ;

namespace midas::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr const char* noop_type = "bench.noop";
constexpr const char* flaky_type = "bench.flaky";
constexpr const char* latency_type = "bench.latency";
constexpr const char* sleep_type = "bench.sleep";
constexpr int retry_attempts = 3;  // the retry workload's tasks succeed on their third attempt

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch())
      .count();
}

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string fixed(double v, int decimals) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(decimals);
  out << v;
  return out.str();
}

// Rounds for JSON: rates to whole tasks/s, times to microseconds.
double round_to(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

// Polls `done` until it holds or `cap` passes; true if it holds.
template <class Pred>
bool wait_until(Pred done, Duration cap, Duration poll = Duration{1}) {
  const auto deadline = SteadyClock::now() + cap;
  while (!done()) {
    if (SteadyClock::now() >= deadline) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

void atomic_min(std::atomic<std::int64_t>& a, std::int64_t v) {
  auto cur = a.load();
  while (v < cur && !a.compare_exchange_weak(cur, v)) {
  }
}

void atomic_max(std::atomic<std::int64_t>& a, std::int64_t v) {
  auto cur = a.load();
  while (v > cur && !a.compare_exchange_weak(cur, v)) {
  }
}

std::vector<TaskSpec> make_specs(const std::string& queue, const char* type, std::size_t n,
                                 int max_attempts) {
  std::vector<TaskSpec> specs;
  specs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    TaskSpec s;
    s.type = type;
    s.params = json{{"i", i}};
    s.queue = queue;
    s.max_attempts = max_attempts;
    specs.push_back(std::move(s));
  }
  return specs;
}

// Enqueues in batches (not timed by the workloads that use it).
result<void> enqueue_batches(Queue& q, const std::vector<TaskSpec>& specs, std::size_t batch) {
  for (std::size_t i = 0; i < specs.size(); i += batch) {
    const std::size_t n = std::min(batch, specs.size() - i);
    MIDAS_TRYV(q.enqueue_batch(std::span<const TaskSpec>{specs.data() + i, n}));
  }
  return success();
}

TypeOptions type_options(const std::string& queue) {
  TypeOptions t;
  t.queue = queue;
  t.retry = RetryPolicy::fixed(Duration{0}).max_attempts(retry_attempts).jitter(Jitter::none);
  return t;
}

WorkerOptions worker_options(const std::string& queue, int concurrency, const LogSink& log,
                             int prefetch = -1) {
  WorkerOptions w;
  w.queues = {queue};
  w.concurrency = concurrency;
  w.prefetch = prefetch;
  w.id = "midas-bench:" + std::to_string(::getpid()) + ":" + queue;
  w.log = log;
  return w;
}

Result start_result(const std::string& name, const Options& o, const std::string& queue) {
  Result r;
  r.fields["workload"] = name;
  r.fields["backend"] = tools::backend_name(o.url);
  r.fields["queue"] = queue;
  r.fields["supported"] = true;
  r.fields["ok"] = true;
  return r;
}

Result& failed(Result& r, const std::string& what) {
  r.ok = false;
  r.fields["ok"] = false;
  r.fields["error"] = what;
  r.rows.emplace_back("error", what);
  return r;
}

std::string problem(const std::string& doing, std::error_code ec) {
  return doing + ": " + ec.message() + " (" + tools::error_name(ec) + ")";
}

// Counts of one queue; zeros when it has no tasks.
result<QueueStats> queue_stats(Queue& q, const std::string& queue) {
  MIDAS_TRY(s, q.stats(queue));
  for (const auto& qs : s.queues) {
    if (qs.queue == queue) return qs;
  }
  QueueStats empty;
  empty.queue = queue;
  return empty;
}

// Calls `each` for every task `filter` matches, a page of 1000 at a time.
template <typename Each>
result<void> for_each_task(Queue& q, ListFilter filter, Each each) {
  filter.limit = 1000;
  for (filter.offset = 0;; filter.offset += filter.limit) {
    MIDAS_TRY(page, q.list(filter));
    for (const auto& t : page) each(t);
    if (page.size() < filter.limit) return success();
  }
}

// --- enqueue ------------------------------------------------------------------------------------

Result enqueue_workload(Queue& q, const Options& o, const std::string& queue) {
  Result r = start_result("enqueue", o, queue);
  r.fields["tasks"] = o.tasks;
  r.fields["batch_size"] = o.batch_size;
  const auto specs = make_specs(queue, noop_type, o.tasks, 0);

  auto t0 = SteadyClock::now();
  for (const auto& s : specs) {
    if (auto e = q.enqueue(s); !e) return failed(r, problem("enqueue", e.error()));
  }
  const double single = seconds_since(t0);

  t0 = SteadyClock::now();
  if (auto e = enqueue_batches(q, specs, o.batch_size); !e) {
    return failed(r, problem("enqueue_batch", e.error()));
  }
  const double batch = seconds_since(t0);

  const double n = static_cast<double>(o.tasks);
  r.fields["single_seconds"] = round_to(single, 6);
  r.fields["single_tasks_per_s"] = std::round(n / single);
  r.fields["batch_seconds"] = round_to(batch, 6);
  r.fields["batch_tasks_per_s"] = std::round(n / batch);
  r.rows.emplace_back("single enqueue", fixed(n / single, 0) + " tasks/s");
  r.rows.emplace_back("batch enqueue (" + std::to_string(o.batch_size) + ")",
                      fixed(n / batch, 0) + " tasks/s");

  auto s = queue_stats(q, queue);
  if (!s) return failed(r, problem("stats", s.error()));
  if (s.value().pending != 2 * o.tasks) {
    return failed(r, "expected " + std::to_string(2 * o.tasks) + " pending tasks, found " +
                         std::to_string(s.value().pending));
  }
  return r;
}

// --- drain --------------------------------------------------------------------------------------

Result drain_workload(Queue& q, const Options& o, const std::string& queue, const LogSink& log) {
  Result r = start_result("drain", o, queue);
  r.fields["tasks"] = o.tasks;
  r.fields["concurrency"] = o.concurrency;
  r.fields["prefetch"] = o.prefetch < 0 ? json() : json(o.prefetch);
  if (auto e = enqueue_batches(q, make_specs(queue, noop_type, o.tasks, 0), o.batch_size); !e) {
    return failed(r, problem("enqueue_batch", e.error()));
  }
  std::atomic<std::int64_t> first{INT64_MAX};
  std::atomic<std::int64_t> last{0};
  Registry registry;
  registry.add_json(
      noop_type,
      [&](const json&, TaskContext&) -> result<void> {
        const auto now = steady_ns();
        atomic_min(first, now);
        atomic_max(last, now);
        return success();
      },
      type_options(queue));
  Worker worker{q, registry, worker_options(queue, o.concurrency, log, o.prefetch)};
  const auto t0 = SteadyClock::now();
  worker.start();
  const bool done = wait_until([&] { return worker.stats().succeeded >= o.tasks; }, o.timeout);
  const double elapsed = seconds_since(t0);
  worker.stop();
  const auto ws = worker.stats();
  const double n = static_cast<double>(o.tasks);
  r.fields["seconds"] = round_to(elapsed, 6);
  r.fields["tasks_per_s"] = std::round(n / elapsed);
  const double span = static_cast<double>(last.load() - first.load()) / 1e9;
  r.fields["first_to_last_tasks_per_s"] =
      o.tasks > 1 && span > 0 ? json(std::round((n - 1) / span)) : json();
  // Where the time outside the handlers went: start-up (connect, first claim) and the tail (the
  // last acks), so a rate lower than first_to_last_tasks_per_s can be explained.
  const std::int64_t t0_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  if (ws.succeeded > 0) {
    r.fields["first_task_after_s"] = round_to(static_cast<double>(first.load() - t0_ns) / 1e9, 6);
    r.fields["last_ack_after_last_task_s"] =
        round_to(elapsed - static_cast<double>(last.load() - t0_ns) / 1e9, 6);
  }
  r.fields["succeeded"] = ws.succeeded;
  r.fields["backend_errors"] = ws.backend_errors;
  r.rows.emplace_back("drain, " + std::to_string(o.concurrency) + " slots",
                      fixed(n / elapsed, 0) + " tasks/s (" + fixed(elapsed, 2) + " s)");
  if (!done) {
    return failed(r, "only " + std::to_string(ws.succeeded) + " of " + std::to_string(o.tasks) +
                         " tasks done after " + tools::format_duration(o.timeout));
  }
  return r;
}

// --- retry --------------------------------------------------------------------------------------

Result retry_workload(Queue& q, const Options& o, const std::string& queue,
                      const std::vector<Result>& previous, const LogSink& log) {
  Result r = start_result("retry", o, queue);
  const std::size_t m = std::max<std::size_t>(1, o.tasks / 4);
  r.fields["tasks"] = m;
  r.fields["concurrency"] = o.concurrency;
  r.fields["prefetch"] = o.prefetch < 0 ? json() : json(o.prefetch);
  if (auto e = enqueue_batches(q, make_specs(queue, flaky_type, m, retry_attempts), o.batch_size);
      !e) {
    return failed(r, problem("enqueue_batch", e.error()));
  }
  std::vector<std::atomic<int>> runs(m);
  Registry registry;
  registry.add_json(
      flaky_type,
      [&](const json& p, TaskContext& ctx) -> result<void> {
        const auto i = p.at("i").get<std::size_t>();
        if (i < runs.size()) ++runs[i];
        if (ctx.attempt() < retry_attempts) {
          return std::make_error_code(std::errc::resource_unavailable_try_again);
        }
        return success();
      },
      type_options(queue));
  Worker worker{q, registry, worker_options(queue, o.concurrency, log, o.prefetch)};
  const auto t0 = SteadyClock::now();
  worker.start();
  const bool done = wait_until([&] { return worker.stats().succeeded >= m; }, o.timeout);
  const double elapsed = seconds_since(t0);
  worker.stop();

  std::size_t attempts = 0;
  std::size_t wrong_runs = 0;
  for (const auto& c : runs) {
    attempts += static_cast<std::size_t>(c.load());
    if (c.load() != retry_attempts) ++wrong_runs;
  }
  // What the backend recorded: every task succeeded at attempt 3 with 3 history records.
  std::size_t recorded_ok = 0;
  ListFilter filter;
  filter.queue = queue;
  filter.status = TaskStatus::succeeded;
  filter.limit = 1000;
  for (;;) {
    auto page = q.list(filter);
    if (!page) return failed(r, problem("list", page.error()));
    for (const auto& t : page.value()) {
      if (t.attempt == retry_attempts && t.history.size() == retry_attempts) ++recorded_ok;
    }
    if (page.value().size() < filter.limit) break;
    filter.offset += filter.limit;
  }

  const double per_attempt_ms = attempts > 0 ? elapsed * 1000.0 / static_cast<double>(attempts) : 0;
  r.fields["attempts"] = attempts;
  r.fields["seconds"] = round_to(elapsed, 6);
  r.fields["attempts_per_s"] = std::round(static_cast<double>(attempts) / elapsed);
  r.fields["per_attempt_ms"] = round_to(per_attempt_ms, 4);
  r.fields["all_ran_exactly_3_times"] = wrong_runs == 0 && recorded_ok == m;
  r.fields["tasks_not_run_exactly_3_times"] = wrong_runs;
  r.fields["tasks_recorded_with_3_attempts"] = recorded_ok;
  json drain_ms;
  json ratio;
  for (const auto& p : previous) {
    if (p.fields.value("workload", "") == "drain" && p.ok && p.fields.contains("seconds")) {
      const double d = p.fields["seconds"].get<double>() * 1000.0 /
                       static_cast<double>(p.fields["tasks"].get<std::size_t>());
      drain_ms = round_to(d, 4);
      if (d > 0) ratio = round_to(per_attempt_ms / d, 2);
    }
  }
  r.fields["drain_per_task_ms"] = drain_ms;
  r.fields["per_attempt_vs_drain"] = ratio;
  r.rows.emplace_back(
      "retry, " + std::to_string(m) + " tasks x 3 attempts",
      fixed(elapsed, 2) + " s, " + fixed(per_attempt_ms, 3) + " ms/attempt" +
          (ratio.is_null() ? "" : " (" + fixed(ratio.get<double>(), 2) + "x a drained task)"));
  r.rows.emplace_back("every task ran exactly 3 times",
                      wrong_runs == 0 && recorded_ok == m ? "yes" : "NO");
  if (!done) {
    return failed(r, "only " + std::to_string(worker.stats().succeeded) + " of " +
                         std::to_string(m) + " tasks done after " +
                         tools::format_duration(o.timeout));
  }
  if (wrong_runs != 0 || recorded_ok != m) {
    return failed(r, std::to_string(wrong_runs) + " task(s) did not run exactly 3 times; " +
                         std::to_string(m - std::min(m, recorded_ok)) +
                         " without 3 recorded attempts");
  }
  return r;
}

// --- latency ------------------------------------------------------------------------------------

Result latency_workload(Queue& q, const Options& o, const std::string& queue, const LogSink& log) {
  Result r = start_result("latency", o, queue);
  const std::size_t n = o.latency_tasks;
  r.fields["tasks"] = n;
  r.fields["rate_per_s"] = o.latency_rate;
  r.fields["scheduled"] = o.latency_scheduled;
  if (o.latency_scheduled > 0) {
    auto later = make_specs(queue, latency_type, o.latency_scheduled, 0);
    const TimePoint run_at = q.clock().now() + std::chrono::hours{24};
    for (auto& s : later) {
      s.params = json{{"i", -2}, {"t", 0}};
      s.run_at = run_at;
    }
    if (auto e = enqueue_batches(q, later, o.batch_size); !e) {
      return failed(r, problem("enqueue_batch", e.error()));
    }
  }
  std::vector<std::atomic<std::int64_t>> latency_ns(n);
  for (auto& l : latency_ns) l = -1;
  std::atomic<std::size_t> seen{0};
  Registry registry;
  registry.add_json(
      latency_type,
      [&](const json& p, TaskContext&) -> result<void> {
        const auto now = steady_ns();
        const auto i = p.at("i").get<std::int64_t>();
        if (i >= 0 && static_cast<std::size_t>(i) < latency_ns.size()) {
          latency_ns[static_cast<std::size_t>(i)] = now - p.at("t").get<std::int64_t>();
        }
        ++seen;
        return success();
      },
      type_options(queue));
  Worker worker{q, registry, worker_options(queue, o.concurrency, log, o.prefetch)};
  worker.start();
  // Warm up with one task, then let the worker go idle.
  TaskSpec warm;
  warm.type = latency_type;
  warm.queue = queue;
  warm.params = json{{"i", -1}, {"t", steady_ns()}};
  if (auto e = q.enqueue(warm); !e) {
    worker.stop();
    return failed(r, problem("enqueue", e.error()));
  }
  if (!wait_until([&] { return worker.stats().succeeded >= 1; }, std::chrono::seconds{30})) {
    worker.stop();
    return failed(r, "the warm-up task did not run within 30 s");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{300});

  const auto period = std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(1.0 / o.latency_rate));
  const auto start = SteadyClock::now();
  std::vector<double> enqueue_ms;  // how long each enqueue call took: the part of the latency
  enqueue_ms.reserve(n);           // spent before the task was stored
  for (std::size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + period * static_cast<std::int64_t>(i));
    TaskSpec s;
    s.type = latency_type;
    s.queue = queue;
    const auto t = steady_ns();
    s.params = json{{"i", i}, {"t", t}};
    if (auto e = q.enqueue(s); !e) {
      worker.stop();
      return failed(r, problem("enqueue", e.error()));
    }
    enqueue_ms.push_back(static_cast<double>(steady_ns() - t) / 1e6);
  }
  const bool done = wait_until([&] { return seen.load() >= n + 1; }, std::chrono::seconds{15});
  worker.stop();

  std::vector<double> ms;
  for (const auto& l : latency_ns) {
    if (l.load() >= 0) ms.push_back(static_cast<double>(l.load()) / 1e6);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(enqueue_ms.begin(), enqueue_ms.end());
  auto pct_of = [](const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return json();
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    return json(round_to(sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1], 3));
  };
  double sum = 0;
  for (double v : ms) sum += v;
  r.fields["started"] = ms.size();
  r.fields["p50_ms"] = pct_of(ms, 0.50);
  r.fields["p99_ms"] = pct_of(ms, 0.99);
  r.fields["max_ms"] = ms.empty() ? json() : json(round_to(ms.back(), 3));
  r.fields["mean_ms"] =
      ms.empty() ? json() : json(round_to(sum / static_cast<double>(ms.size()), 3));
  r.fields["enqueue_p50_ms"] = pct_of(enqueue_ms, 0.50);
  r.fields["enqueue_p99_ms"] = pct_of(enqueue_ms, 0.99);
  r.fields["enqueue_max_ms"] = pct_of(enqueue_ms, 1.0);
  if (!ms.empty()) {
    r.rows.emplace_back("enqueue-to-start p50 / p99 / max",
                        fixed(r.fields["p50_ms"].get<double>(), 2) + " / " +
                            fixed(r.fields["p99_ms"].get<double>(), 2) + " / " +
                            fixed(ms.back(), 2) + " ms");
  }
  if (!enqueue_ms.empty()) {
    r.rows.emplace_back("the enqueue calls alone p50 / p99 / max",
                        fixed(r.fields["enqueue_p50_ms"].get<double>(), 2) + " / " +
                            fixed(r.fields["enqueue_p99_ms"].get<double>(), 2) + " / " +
                            fixed(enqueue_ms.back(), 2) + " ms");
  }
  if (!done || ms.size() != n) {
    return failed(r, "only " + std::to_string(ms.size()) + " of " + std::to_string(n) +
                         " tasks started within 15 s of the last enqueue");
  }
  return r;
}

// --- crash --------------------------------------------------------------------------------------

struct RunLine {
  char kind = 0;  // 'S' started, 'D' done
  std::size_t index = 0;
  std::int64_t at_ms = 0;
};

std::vector<RunLine> read_runs(const std::string& path) {
  std::vector<RunLine> lines;
  std::ifstream in{path};
  std::string kind;
  RunLine l;
  long long pid = 0;
  while (in >> kind >> l.index >> l.at_ms >> pid) {
    l.kind = kind.empty() ? '?' : kind[0];
    lines.push_back(l);
  }
  return lines;
}

pid_t spawn_child(const Options& o, const std::string& queue, const std::string& runs_file) {
  std::vector<std::string> args{o.self_exe,
                                "--worker-child",
                                "--url",
                                o.url,
                                "--child-queue",
                                queue,
                                "--concurrency",
                                std::to_string(o.concurrency),
                                "--child-task-ms",
                                std::to_string(o.crash_task_ms),
                                "--child-runs-file",
                                runs_file};
  if (o.verbose) args.emplace_back("--verbose");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, o.self_exe.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
    return -1;
  }
  return pid;
}

// Waits for `pid` to exit for up to `cap`; kills it if it does not.
void reap(pid_t pid, Duration cap) {
  const auto deadline = SteadyClock::now() + cap;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || r < 0) return;
    if (SteadyClock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

Result crash_workload(Queue& q, const Options& o, const std::string& queue) {
  Result r = start_result("crash", o, queue);
  const std::size_t n = o.crash_tasks;
  r.fields["tasks"] = n;
  r.fields["task_ms"] = o.crash_task_ms;
  r.fields["concurrency"] = o.concurrency;
  if (tools::backend_name(o.url) == "memory") {
    r.fields["supported"] = false;
    r.fields["ok"] = true;
    r.fields["reason"] =
        "memory:// lives inside one process, so a killed worker process takes its queue with it; "
        "run the crash workload against postgresql:// or redis://";
    r.rows.emplace_back("crash", "unsupported on memory:// (the queue dies with the process)");
    return r;
  }
  std::string runs_file = "/tmp/midas-bench-runs-XXXXXX";
  const int fd = ::mkstemp(runs_file.data());
  if (fd < 0) return failed(r, "cannot create a temporary file in /tmp for the run log");
  ::close(fd);
  struct Remove {
    std::string path;
    ~Remove() { std::remove(path.c_str()); }
  } remove_runs{runs_file};

  if (auto e = enqueue_batches(q, make_specs(queue, sleep_type, n, 0), o.batch_size); !e) {
    return failed(r, problem("enqueue_batch", e.error()));
  }
  const pid_t first_child = spawn_child(o, queue, runs_file);
  if (first_child < 0) return failed(r, "cannot start a worker process (" + o.self_exe + ")");
  const bool started = wait_until(
      [&] {
        std::ifstream in{runs_file, std::ios::ate};
        return in.tellg() > 0;
      },
      std::chrono::seconds{30}, Duration{2});
  if (!started) {
    ::kill(first_child, SIGKILL);
    reap(first_child, std::chrono::seconds{5});
    return failed(r, "the worker process started no task within 30 s");
  }
  const auto first_start = SteadyClock::now();
  std::this_thread::sleep_for(o.crash_kill_after);
  ::kill(first_child, SIGKILL);
  const std::int64_t kill_ms = epoch_ms();
  const auto killed_at = SteadyClock::now();
  reap(first_child, std::chrono::seconds{5});

  std::map<std::size_t, int> open_at_kill;
  for (const auto& l : read_runs(runs_file)) open_at_kill[l.index] += l.kind == 'S' ? 1 : -1;
  std::vector<std::size_t> in_flight;
  for (const auto& [i, open] : open_at_kill) {
    if (open > 0) in_flight.push_back(i);
  }
  // The tasks the killed worker held: still running in the backend, with nobody left to settle
  // them. Besides those whose handler was running, they are the tasks claimed ahead and those
  // whose outcome was not recorded yet; the kill can land while every handler is between tasks
  // (waiting for a slow commit), but not while the worker holds nothing.
  std::vector<std::size_t> leased;
  if (auto e = for_each_task(
          q, {.queue = queue, .status = TaskStatus::running},
          [&](const Task& t) { leased.push_back(t.params.value("i", std::size_t{0})); });
      !e) {
    return failed(r, problem("list (tasks held at the kill)", e.error()));
  }

  const pid_t second_child = spawn_child(o, queue, runs_file);
  if (second_child < 0) return failed(r, "cannot start the second worker process");
  std::size_t succeeded = 0;
  std::optional<std::error_code> stats_error;
  const bool done = wait_until(
      [&] {
        auto s = queue_stats(q, queue);
        if (!s) {
          stats_error = s.error();
          return false;
        }
        succeeded = s.value().succeeded;
        return succeeded >= n;
      },
      o.timeout, Duration{20});
  const double after_kill = seconds_since(killed_at);
  const double total = seconds_since(first_start);
  ::kill(second_child, SIGTERM);
  reap(second_child, std::chrono::seconds{20});

  std::map<std::size_t, int> starts;
  std::map<std::size_t, int> dones;
  std::map<std::size_t, std::int64_t> last_done;
  for (const auto& l : read_runs(runs_file)) {
    if (l.kind == 'S') ++starts[l.index];
    if (l.kind == 'D') {
      ++dones[l.index];
      last_done[l.index] = std::max(last_done[l.index], l.at_ms);
    }
  }
  std::size_t ran_twice = 0;
  std::size_t handler_completed_twice = 0;
  for (const auto& [i, c] : starts) ran_twice += c > 1 ? 1 : 0;
  // A handler that completed but whose worker was killed before its ack landed runs again:
  // at-least-once, reported but not a failure.
  for (const auto& [i, c] : dones) handler_completed_twice += c > 1 ? 1 : 0;
  // Finished twice = a success recorded twice by the backend, which fencing must prevent.
  std::size_t finished_twice = 0;
  std::optional<std::error_code> history_error;
  if (auto e = for_each_task(q, {.queue = queue},
                             [&](const Task& t) {
                               const auto successes = std::count_if(
                                   t.history.begin(), t.history.end(),
                                   [](const auto& a) { return a.decision == "succeeded"; });
                               finished_twice += successes > 1 ? 1 : 0;
                             });
      !e) {
    history_error = e.error();
  }
  // Recovery: from the kill to the last run, after it, of a task the killed worker held. A task
  // whose handler was running must run again; one whose handler had completed may not need to
  // (its outcome may still have been recorded: a commit the server received before the kill).
  // Runs stamped in the kill's own millisecond do not count as after it.
  const auto done_after_kill = [&](std::size_t i) -> std::int64_t {
    auto it = last_done.find(i);
    return it == last_done.end() || it->second <= kill_ms ? 0 : it->second;
  };
  std::int64_t latest = kill_ms;  // stays kill_ms while no held task ran after the kill
  for (auto i : leased) latest = std::max(latest, done_after_kill(i));
  const bool all_recovered = std::all_of(in_flight.begin(), in_flight.end(),
                                         [&](std::size_t i) { return done_after_kill(i) > 0; });
  json recovery;
  if (latest > kill_ms && all_recovered) {
    recovery = round_to(static_cast<double>(latest - kill_ms) / 1000.0, 3);
  }
  const std::size_t lost = n - std::min(n, succeeded);
  r.fields["killed_after_s"] =
      round_to(std::chrono::duration<double>(killed_at - first_start).count(), 3);
  r.fields["in_flight_at_kill"] = in_flight.size();
  r.fields["leased_at_kill"] = leased.size();
  r.fields["completed"] = succeeded;
  r.fields["completed_runs_distinct"] = dones.size();
  r.fields["lost"] = lost;
  r.fields["ran_twice"] = ran_twice;
  r.fields["finished_twice"] = finished_twice;
  r.fields["handler_completed_twice"] = handler_completed_twice;
  r.fields["recovery_s"] = recovery;
  r.fields["all_done_after_kill_s"] = done ? json(round_to(after_kill, 3)) : json();
  r.fields["total_s"] = done ? json(round_to(total, 3)) : json();
  r.rows.emplace_back("completed / lost", std::to_string(succeeded) + " / " + std::to_string(lost));
  r.rows.emplace_back("held / running at the kill",
                      std::to_string(leased.size()) + " / " + std::to_string(in_flight.size()));
  r.rows.emplace_back("ran twice / finished twice",
                      std::to_string(ran_twice) + " / " + std::to_string(finished_twice));
  r.rows.emplace_back(
      "killed tasks done again after",
      recovery.is_null() ? std::string{"-"} : fixed(recovery.get<double>(), 2) + " s");
  r.rows.emplace_back("all done, after the kill", done ? fixed(after_kill, 2) + " s" : "no");
  if (!done) {
    std::string why = std::to_string(lost) + " task(s) not done " +
                      tools::format_duration(o.timeout) + " after the kill";
    if (stats_error) why += " (last stats error: " + stats_error->message() + ")";
    return failed(r, why);
  }
  if (history_error) return failed(r, problem("list (history check)", *history_error));
  if (finished_twice != 0) {
    return failed(r, std::to_string(finished_twice) + " task(s) finished twice");
  }
  return r;
}

// --- cleanup ------------------------------------------------------------------------------------

// Empties `queue`: runs what is left with no-op handlers, cancels what cannot run now, and prunes
// the finished tasks. Returns what could not be done, or "" when the queue is empty.
std::string cleanup(Queue& q, const std::string& queue, const LogSink& log) {
  auto s = queue_stats(q, queue);
  if (!s) return problem("stats", s.error());
  if (s.value().pending + s.value().retrying > 0) {
    Registry registry;
    for (const char* type : {noop_type, flaky_type, latency_type, sleep_type}) {
      registry.add_json(
          type, [](const json&, TaskContext&) -> result<void> { return success(); },
          type_options(queue));
    }
    Worker worker{q, registry, worker_options(queue, 16, log)};
    (void)worker.run_until_idle();
    ListFilter left;
    left.queue = queue;
    left.limit = 1000;
    for (TaskStatus st : {TaskStatus::pending, TaskStatus::retrying}) {
      left.status = st;
      for (;;) {  // page by page, until a page is empty or nothing on it could be cancelled
        auto page = q.list(left);
        if (!page) return problem("list", page.error());
        std::size_t cancelled = 0;
        for (const auto& t : page.value()) {
          if (q.cancel(t.id)) ++cancelled;
        }
        if (cancelled == 0) break;
      }
    }
  }
  // Queue::prune has no queue filter: prune only when no other queue would lose finished tasks.
  auto all = q.stats(std::nullopt);
  if (!all) return problem("stats", all.error());
  std::size_t others = 0;
  std::size_t ours = 0;
  std::size_t running = 0;
  for (const auto& qs : all.value().queues) {
    const std::size_t finished = qs.succeeded + qs.failed + qs.cancelled;
    if (qs.queue == queue) {
      ours = finished;
      running = qs.running + qs.pending + qs.retrying;
    } else if (qs.queue.rfind("bench-", 0) != 0) {
      others += finished;
    }
  }
  std::string note;
  if (running > 0) {
    note = std::to_string(running) +
           " task(s) of this queue are still unfinished (leased by a killed worker?); they finish "
           "once their leases expire";
  }
  if (ours == 0) return note;
  if (others > 0) {
    return (note.empty() ? "" : note + "; ") + std::to_string(ours) +
           " finished task(s) left: pruning would also delete the " + std::to_string(others) +
           " finished task(s) of other queues (Queue::prune has no queue filter); bench against "
           "a dedicated schema or prefix (?schema=midas_bench, ?prefix=midas-bench), or run "
           "`midasctl prune --older-than 0s`";
  }
  const TimePoint cutoff = q.clock().now() + std::chrono::milliseconds{1};
  for (;;) {
    auto p = q.prune(cutoff, 1000);
    if (!p) return problem("prune", p.error());
    if (p.value() < 1000) break;
  }
  return note;
}

}  // namespace

const std::vector<std::string>& workload_names() {
  static const std::vector<std::string> names{"enqueue", "drain", "retry", "latency", "crash"};
  return names;
}

Result run_workload(const std::string& name, Queue& queue, const Options& options,
                    const std::vector<Result>& previous, const LogSink& log) {
  std::random_device rd;
  std::array<char, 16> suffix{};
  std::snprintf(suffix.data(), suffix.size(), "%08x", rd());
  const std::string queue_name = "bench-" + name + "-" + suffix.data();
  Result r;
  try {
    if (name == "enqueue") {
      r = enqueue_workload(queue, options, queue_name);
    } else if (name == "drain") {
      r = drain_workload(queue, options, queue_name, log);
    } else if (name == "retry") {
      r = retry_workload(queue, options, queue_name, previous, log);
    } else if (name == "latency") {
      r = latency_workload(queue, options, queue_name, log);
    } else {
      r = crash_workload(queue, options, queue_name);
    }
  } catch (const std::exception& e) {
    r = start_result(name, options, queue_name);
    failed(r, std::string{"unexpected failure: "} + e.what());
  }
  if (r.fields.value("supported", true)) {
    std::string left = cleanup(queue, queue_name, log);
    r.fields["queue_left_empty"] = left.empty();
    if (!left.empty()) {
      r.fields["cleanup"] = left;
      std::cerr << "midas-bench: warning: queue " << queue_name << ": " << left << "\n";
    }
  }
  return r;
}

int run_worker_child(const std::string& url, const std::string& queue, int concurrency, int task_ms,
                     const std::string& runs_file, bool verbose) {
  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  tools::Connection conn;
  if (auto failure = tools::connect_queue(url, verbose, conn)) {
    std::cerr << "midas-bench worker: " << failure->message << "\n";
    return tools::exit_failure;
  }
  const int fd = ::open(runs_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    std::cerr << "midas-bench worker: cannot open " << runs_file << "\n";
    return tools::exit_failure;
  }
  const std::string pid = std::to_string(::getpid());
  auto record = [fd, &pid](char kind, std::size_t index) {
    const std::string line = std::string(1, kind) + " " + std::to_string(index) + " " +
                             std::to_string(epoch_ms()) + " " + pid + "\n";
    // One write per line with O_APPEND: lines of both processes never interleave.
    return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  };
  Registry registry;
  registry.add_json(
      sleep_type,
      [&](const json& p, TaskContext&) -> result<void> {
        const auto i = p.at("i").get<std::size_t>();
        if (!record('S', i)) return std::error_code{errno, std::generic_category()};
        std::this_thread::sleep_for(std::chrono::milliseconds{task_ms});
        if (!record('D', i)) return std::error_code{errno, std::generic_category()};
        return success();
      },
      type_options(queue));
  Worker worker{*conn.queue, registry, worker_options(queue, concurrency, conn.logs.sink())};
  worker.start();
  int sig = 0;
  sigwait(&stop_signals, &sig);
  worker.stop();
  ::close(fd);
  return tools::exit_ok;
}

}  // namespace midas::bench
