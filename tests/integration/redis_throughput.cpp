// SPDX-License-Identifier: MIT
// Throughput of the Redis backend: single enqueues, batches, and a worker draining the queue.
//
//   midas_redis_throughput [--url redis://127.0.0.1:56379/0] [--tasks 20000] [--batch 1000]
//                          [--concurrency 8] [--producers 1]
//
// Uses a fresh key prefix and deletes its keys at the end. Prints one line per figure and a JSON
// object with all of them.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <midas/midas.hpp>
#include <midas/redis.hpp>
#include <string>
#include <thread>
#include <vector>

#include "redis_support.hpp"

using namespace midas;
using SteadyClock = std::chrono::steady_clock;

namespace {

double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

TaskSpec spec(int i) {
  TaskSpec s;
  s.type = "noop";
  s.params = {{"i", i}, {"payload", "0123456789abcdef0123456789abcdef"}};
  return s;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: midas_redis_throughput [--url URL] [--tasks N] [--batch N] "
               "[--concurrency N] [--producers N]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = testing::redis::test_url().value_or("redis://127.0.0.1:56379/0");
  int tasks = 20000;
  int batch = 1000;
  int concurrency = 8;
  int producers = 1;
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    const std::string a = argv[i];
    if (a == "--url") {
      url = next();
    } else if (a == "--tasks") {
      tasks = std::stoi(next());
    } else if (a == "--batch") {
      batch = std::stoi(next());
    } else if (a == "--concurrency") {
      concurrency = std::stoi(next());
    } else if (a == "--producers") {
      producers = std::stoi(next());
    } else {
      usage();
    }
  }
  if (tasks <= 0 || batch <= 0 || concurrency <= 0 || producers <= 0) usage();

  RedisOptions options;
  options.key_prefix = testing::redis::unique_prefix();
  auto connected = connect_redis(url, options);
  if (!connected) {
    std::fprintf(stderr, "cannot connect to %s: %s\n", url.c_str(),
                 connected.error().message().c_str());
    return 1;
  }
  Queue& q = *connected.value();
  int failures = 0;

  // 1. One enqueue per call (a round trip each), from `producers` threads.
  auto t0 = SteadyClock::now();
  {
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int p = 0; p < producers; ++p) {
      threads.emplace_back([&, p] {
        for (int i = p; i < tasks; i += producers) {
          if (!q.enqueue(spec(i))) ++errors;
        }
      });
    }
    for (auto& t : threads) t.join();
    failures += errors.load();
  }
  const double single_s = seconds_since(t0);
  const double single_rate = tasks / single_s;
  std::printf("enqueue (one per call, %d producer(s)): %d tasks in %.3f s = %.0f tasks/s\n",
              producers, tasks, single_s, single_rate);

  // 2. Batches.
  t0 = SteadyClock::now();
  for (int done = 0; done < tasks; done += batch) {
    std::vector<TaskSpec> specs;
    for (int i = done; i < std::min(tasks, done + batch); ++i) specs.push_back(spec(i));
    if (!q.enqueue_batch(specs)) ++failures;
  }
  const double batch_s = seconds_since(t0);
  const double batch_rate = tasks / batch_s;
  std::printf("enqueue_batch (batches of %d): %d tasks in %.3f s = %.0f tasks/s\n", batch, tasks,
              batch_s, batch_rate);

  // 3. Drain both sets with one worker and a handler that does nothing.
  Registry reg;
  reg.add_json("noop",
               [](const nlohmann::json&, TaskContext&) -> result<void> { return success(); });
  WorkerOptions wo;
  wo.concurrency = concurrency;
  wo.log = [](LogLevel level, std::string_view m) {
    if (level >= LogLevel::warning) std::fprintf(stderr, "worker: %.*s\n", int(m.size()), m.data());
  };
  Worker worker{q, reg, wo};
  t0 = SteadyClock::now();
  const WorkerStats ws = worker.run_until_idle();
  const double drain_s = seconds_since(t0);
  const double drain_rate = static_cast<double>(ws.succeeded) / drain_s;
  std::printf("drain (worker, concurrency %d): %llu tasks in %.3f s = %.0f tasks/s\n", concurrency,
              static_cast<unsigned long long>(ws.succeeded), drain_s, drain_rate);
  if (ws.succeeded != static_cast<std::uint64_t>(2 * tasks)) ++failures;

  std::printf(
      "{\"url\":\"%s\",\"tasks\":%d,\"batch\":%d,\"concurrency\":%d,\"producers\":%d,"
      "\"enqueue_per_s\":%.0f,\"enqueue_batch_per_s\":%.0f,\"drain_per_s\":%.0f,"
      "\"failures\":%d}\n",
      url.c_str(), tasks, batch, concurrency, producers, single_rate, batch_rate, drain_rate,
      failures);

  connected.value().reset();
  testing::redis::RawRedis raw{url};
  raw.delete_prefix(options.key_prefix);
  return failures == 0 ? 0 : 1;
}
