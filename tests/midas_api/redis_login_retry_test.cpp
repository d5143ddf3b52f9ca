// SPDX-License-Identifier: MIT
// The login retry limit kept in Redis (MIDAS_API.md "Login retry limit"): shared by processes,
// fails open when Redis is away. Needs MIDAS_TEST_REDIS_URL; skipped without it.
#include "agents/redis_login_retry.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string redis_url() {
  const char* url = std::getenv("MIDAS_TEST_REDIS_URL");
  return url ? url : "";
}

std::string fresh_key() { return "retry-test-" + std::to_string(std::random_device{}()); }

}  // namespace

TEST_CASE("failed logins are counted in redis and shared by every store on it" *
          doctest::skip(redis_url().empty())) {
  midas_api::RedisLoginRetryStore a{redis_url(), {}};
  midas_api::RedisLoginRetryStore b{redis_url(), {}};
  const std::string key = fresh_key();
  CHECK(a.count(key) == 0);
  a.increment(key);
  b.increment(key);
  CHECK(a.count(key) == 2);
  CHECK(b.count(key) == 2);
  b.max_out(key, 5, std::chrono::seconds{900});
  CHECK(a.count(key) == 5);
}

TEST_CASE("a maxed-out key expires after its ttl" * doctest::skip(redis_url().empty())) {
  midas_api::RedisLoginRetryStore store{redis_url(), {}};
  const std::string key = fresh_key();
  store.max_out(key, 5, std::chrono::seconds{1});
  CHECK(store.count(key) == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds{2100});
  CHECK(store.count(key) == 0);
}

TEST_CASE("an unreachable redis fails open and says so") {
  std::vector<std::string> warnings;
  midas_api::RedisLoginRetryStore store{"redis://127.0.0.1:1/0",
                                        [&](const std::string& m) { warnings.push_back(m); }};
  store.increment("k");
  CHECK(store.count("k") == 0);
  REQUIRE(!warnings.empty());
  CHECK(warnings.front().find("cannot reach redis at 127.0.0.1:1") != std::string::npos);
}

TEST_CASE("a malformed REDIS_URL is refused") {
  CHECK_THROWS_AS(midas_api::RedisLoginRetryStore("http://x", {}), std::invalid_argument);
  CHECK_THROWS_AS(midas_api::RedisLoginRetryStore("redis://h:notaport", {}), std::invalid_argument);
  CHECK_THROWS_AS(midas_api::RedisLoginRetryStore("redis://h:6379/x", {}), std::invalid_argument);
}
