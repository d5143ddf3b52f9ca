// SPDX-License-Identifier: MIT
// The Redis backend's conformance factory: each queue gets a key prefix of its own on the server
// MIDAS_TEST_REDIS_URL names; its keys are deleted when the program ends.
#include <cstdlib>
#include <midas/redis.hpp>
#include <mutex>
#include <vector>

#include "../integration/redis_support.hpp"
#include "factory.hpp"

namespace midas::testing {
namespace {

class RedisBackend final : public Backend {
 public:
  ~RedisBackend() override {
    auto url = redis::test_url();
    if (!url || prefixes_.empty()) return;
    redis::RawRedis raw{*url};
    for (const auto& p : prefixes_) raw.delete_prefix(p);
  }

  [[nodiscard]] std::string name() const override { return "redis"; }

  [[nodiscard]] std::string unavailable_reason() const override {
    return redis::test_url() ? "" : "MIDAS_TEST_REDIS_URL is not set";
  }

  [[nodiscard]] result<std::unique_ptr<Queue>> make(const Clock& clock) override {
    RedisOptions options;
    options.key_prefix = redis::unique_prefix();
    options.log = [](LogLevel, std::string_view) {};  // durability notes would clutter the output
    {
      std::lock_guard lock{mutex_};
      prefixes_.push_back(options.key_prefix);
    }
    return connect_redis(*redis::test_url(), std::move(options), {.clock = &clock});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> prefixes_;
};

}  // namespace

std::unique_ptr<Backend> make_backend() { return std::make_unique<RedisBackend>(); }

}  // namespace midas::testing
