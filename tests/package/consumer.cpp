// SPDX-License-Identifier: MIT
// The program the add_subdirectory and FetchContent consumers build: uses midas the way an
// application would and exits non-zero unless every task it enqueued ran and succeeded.
#include <cstdio>
#include <midas/midas.hpp>
#include <string>
#include <vector>

#if MIDAS_EXPECT_REDIS != defined(MIDAS_HAS_REDIS)
#error "MIDAS_HAS_REDIS does not match MIDAS_WITH_REDIS"
#endif
#if MIDAS_EXPECT_POSTGRES != defined(MIDAS_HAS_POSTGRES)
#error "MIDAS_HAS_POSTGRES does not match MIDAS_WITH_POSTGRES"
#endif

namespace {

struct Greet {
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Greet, name)

}  // namespace

int main() {
  auto queue = midas::connect("memory://");
  if (!queue) {
    std::fprintf(stderr, "connect(memory://): %s\n", queue.error().message().c_str());
    return 1;
  }
  std::vector<std::string> greeted;
  midas::Registry registry;
  registry.add<Greet>("greet", [&greeted](const Greet& g, midas::TaskContext&) {
    greeted.push_back(g.name);  // one worker thread below: no lock needed
  });

  std::vector<midas::TaskId> ids;
  for (const char* name : {"ada", "grace", "barbara"}) {
    auto enqueued = queue.value()->enqueue(registry.spec(Greet{name}));
    if (!enqueued) {
      std::fprintf(stderr, "enqueue: %s\n", enqueued.error().message().c_str());
      return 1;
    }
    ids.push_back(enqueued.value().id);
  }

  midas::Worker worker(*queue.value(), registry, {.queues = {"default"}, .concurrency = 1});
  worker.run_until_idle();

  int bad = 0;
  for (const auto& id : ids) {
    auto task = queue.value()->get(id);
    if (!task || task.value().status != midas::TaskStatus::succeeded) {
      std::fprintf(stderr, "task %s did not succeed\n", id.c_str());
      ++bad;
    }
  }
  if (greeted.size() != ids.size()) {
    std::fprintf(stderr, "%zu handler calls for %zu tasks\n", greeted.size(), ids.size());
    ++bad;
  }
  if (bad == 0) {
    std::printf("midas %d.%d.%d: %zu tasks ran and succeeded\n", MIDAS_VERSION_MAJOR,
                MIDAS_VERSION_MINOR, MIDAS_VERSION_PATCH, ids.size());
  }
  return bad == 0 ? 0 : 1;
}
