// SPDX-License-Identifier: MIT
// A worker process for the process-level tests (two drainers on one queue, a server restart in
// the middle of a drain). Works on any backend URL.
//
//   midas_test_drainer enqueue URL QUEUE COUNT
//   midas_test_drainer drain URL QUEUE EXPECT CONCURRENCY TASK_MS RUN_LOG TIMEOUT_S
//   midas_test_drainer check URL QUEUE EXPECT
//
// `drain` runs a Worker until EXPECT tasks of QUEUE have succeeded (counted by the backend), and
// appends "<task id> <attempt> <pid>" to RUN_LOG each time a handler runs, so the test can count
// runs per task across processes. Exit 0 when done, 1 on timeout or error.
//
// `check` reads every task of QUEUE back from the backend and prints
// "tasks=N succeeded=S lost=L finished_twice=F not_succeeded=X": lost counts expected tasks that
// are missing or not succeeded, finished_twice tasks whose history records two successes (which
// fencing must prevent). Exit 0 when lost and finished_twice are 0.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <midas/midas.hpp>
#include <thread>

namespace {

int to_int(const char* s) {
  int v = 0;
  std::from_chars(s, s + std::char_traits<char>::length(s), v);
  return v;
}

int enqueue(const char* url, const std::string& queue, int count) {
  auto q = midas::connect(url);
  if (!q) {
    std::cerr << "drainer: cannot connect: " << q.error().message() << "\n";
    return 1;
  }
  std::vector<midas::TaskSpec> specs;
  for (int i = 0; i < count; ++i) {
    specs.push_back({.type = "work", .params = {{"n", i}}, .queue = queue});
    if (specs.size() == 500 || i + 1 == count) {
      auto r = q.value()->enqueue_batch(specs);
      if (!r) {
        std::cerr << "drainer: enqueue failed: " << r.error().message() << "\n";
        return 1;
      }
      specs.clear();
    }
  }
  std::cout << "enqueued " << count << "\n";
  return 0;
}

int drain(const char* url, const std::string& queue, std::size_t expect, int concurrency,
          int task_ms, const char* run_log, int timeout_s) {
  auto connected = midas::connect(url);
  for (int i = 0; !connected && i < 50; ++i) {  // the server may still be starting
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    connected = midas::connect(url);
  }
  if (!connected) {
    std::cerr << "drainer: cannot connect: " << connected.error().message() << "\n";
    return 1;
  }
  auto& q = *connected.value();
  int fd = ::open(run_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) {
    std::perror("drainer: run log");
    return 1;
  }
  midas::Registry registry;
  registry.add_json(
      "work",
      [&](const nlohmann::json&, midas::TaskContext& ctx) -> midas::result<void> {
        std::this_thread::sleep_for(std::chrono::milliseconds{task_ms});
        std::string line = ctx.task().id + " " + std::to_string(ctx.attempt()) + " " +
                           std::to_string(::getpid()) + "\n";
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          return std::error_code{errno, std::generic_category()};
        }
        return midas::success();
      },
      {.queue = queue, .retry = midas::RetryPolicy::fixed(std::chrono::milliseconds{200})});
  const char* lease_ms = std::getenv("MIDAS_TEST_LEASE_MS");  // short in the restart test
  const std::chrono::milliseconds lease{lease_ms ? to_int(lease_ms) : 30000};
  midas::Worker worker{
      q,
      registry,
      {.queues = {queue},
       .concurrency = concurrency,
       .lease = lease,
       .heartbeat_interval = std::min<midas::Duration>(std::chrono::seconds{2}, lease / 4),
       .rescue_interval = std::min<midas::Duration>(std::chrono::seconds{1}, lease / 4),
       .backoff_max = std::chrono::seconds{1}}};
  worker.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{timeout_s};
  int rc = 1;
  std::size_t done = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
    auto stats = q.stats(queue);
    if (!stats) continue;  // the server may be restarting
    done = stats.value().queues.empty() ? 0 : stats.value().queues.front().succeeded;
    if (done >= expect) {
      rc = 0;
      break;
    }
  }
  worker.stop();
  ::close(fd);
  auto s = worker.stats();
  std::cout << "drainer " << ::getpid() << ": succeeded(all workers)=" << done << "/" << expect
            << " ran=" << s.claimed << " backend_errors=" << s.backend_errors
            << " lease_lost=" << s.lease_lost << (rc == 0 ? "" : " TIMEOUT") << "\n";
  return rc;
}

int check(const char* url, const std::string& queue, std::size_t expect) {
  auto q = midas::connect(url);
  if (!q) {
    std::cerr << "drainer: cannot connect: " << q.error().message() << "\n";
    return 1;
  }
  std::size_t tasks = 0, succeeded = 0, twice = 0;
  for (std::size_t offset = 0;; offset += 1000) {
    auto page = q.value()->list({.queue = queue, .limit = 1000, .offset = offset});
    if (!page) {
      std::cerr << "drainer: list failed: " << page.error().message() << "\n";
      return 1;
    }
    for (const auto& t : page.value()) {
      ++tasks;
      succeeded += t.status == midas::TaskStatus::succeeded ? 1 : 0;
      const auto wins = std::count_if(t.history.begin(), t.history.end(),
                                      [](const auto& a) { return a.decision == "succeeded"; });
      twice += wins > 1 ? 1 : 0;
    }
    if (page.value().size() < 1000) break;
  }
  const std::size_t lost = expect > succeeded ? expect - succeeded : 0;
  std::cout << "tasks=" << tasks << " succeeded=" << succeeded << " lost=" << lost
            << " finished_twice=" << twice << " not_succeeded=" << (tasks - succeeded) << "\n";
  return lost == 0 && twice == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "enqueue" && argc == 5) return enqueue(argv[2], argv[3], to_int(argv[4]));
  if (mode == "check" && argc == 5) {
    return check(argv[2], argv[3], static_cast<std::size_t>(to_int(argv[4])));
  }
  if (mode == "drain" && argc == 9) {
    return drain(argv[2], argv[3], static_cast<std::size_t>(to_int(argv[4])), to_int(argv[5]),
                 to_int(argv[6]), argv[7], to_int(argv[8]));
  }
  std::cerr << "usage: midas_test_drainer enqueue URL QUEUE COUNT\n"
               "       midas_test_drainer check URL QUEUE EXPECT\n"
               "       midas_test_drainer drain URL QUEUE EXPECT CONCURRENCY TASK_MS RUN_LOG "
               "TIMEOUT_S\n";
  return 2;
}
