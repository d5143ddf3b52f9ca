// SPDX-License-Identifier: MIT
// Puts tasks in the states the midasctl tests need, on any backend URL:
//
//   midas_tools_helper enqueue URL QUEUE TYPE COUNT [MAX_ATTEMPTS]   batch-enqueues COUNT tasks
//   midas_tools_helper run URL QUEUE TYPE succeed|fail               runs every due task of QUEUE
//
// `run` registers TYPE with a handler that succeeds, or fails for good (ctx.fail), and runs a
// Worker until the queue is idle; it prints how many tasks succeeded and failed.
#include <charconv>
#include <iostream>
#include <midas/midas.hpp>
#include <string>
#include <string_view>

namespace {

int usage() {
  std::cerr << "usage: midas_tools_helper enqueue URL QUEUE TYPE COUNT [MAX_ATTEMPTS]\n"
               "       midas_tools_helper run URL QUEUE TYPE succeed|fail\n";
  return 2;
}

int to_int(std::string_view s, int fallback) {
  int v = fallback;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) return usage();
  const std::string_view command = argv[1];
  const std::string url = argv[2];
  const std::string queue = argv[3];
  const std::string type = argv[4];
  auto connected = midas::connect(url);
  if (!connected) {
    std::cerr << "midas_tools_helper: cannot connect to " << url << ": "
              << connected.error().message() << "\n";
    return 1;
  }
  midas::Queue& q = *connected.value();

  if (command == "enqueue") {
    const int count = to_int(argv[5], 0);
    const int max_attempts = argc > 6 ? to_int(argv[6], 0) : 0;
    std::vector<midas::TaskSpec> specs;
    for (int i = 0; i < count; ++i) {
      midas::TaskSpec s;
      s.type = type;
      s.queue = queue;
      s.params = {{"i", i}};
      s.max_attempts = max_attempts;
      specs.push_back(std::move(s));
      if (specs.size() == 1000 || i + 1 == count) {
        if (auto r = q.enqueue_batch(specs); !r) {
          std::cerr << "midas_tools_helper: enqueue failed: " << r.error().message() << "\n";
          return 1;
        }
        specs.clear();
      }
    }
    std::cout << "enqueued " << count << "\n";
    return 0;
  }

  if (command == "run") {
    const std::string_view outcome = argv[5];
    if (outcome != "succeed" && outcome != "fail") return usage();
    midas::Registry registry;
    midas::TypeOptions options;
    options.queue = queue;
    options.retry = midas::RetryPolicy::fixed(midas::Duration{0}).max_attempts(1);
    registry.add_json(
        type,
        [outcome](const nlohmann::json&, midas::TaskContext& ctx) -> midas::result<void> {
          if (outcome == "fail") return ctx.fail("failed on purpose by the midasctl tests");
          return midas::success();
        },
        options);
    midas::WorkerOptions wo;
    wo.queues = {queue};
    wo.concurrency = 4;
    midas::Worker worker{q, registry, wo};
    const auto stats = worker.run_until_idle();
    std::cout << "succeeded " << stats.succeeded << " failed " << stats.failed << "\n";
    return 0;
  }
  return usage();
}
