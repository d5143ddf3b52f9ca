// SPDX-License-Identifier: MIT
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "agents/agent.hpp"

struct redisContext;

namespace midas_api {

/** LoginRetryStore in Redis, shared by every midas-api process that uses the same Redis (as the
 *  original kept its counters): INCR for a failed login, SET ... EX 900 at the limit, GET to read.
 *  One connection behind a mutex (a redisContext is not thread-safe); a connection that failed is
 *  dropped and opened again on the next call. When Redis cannot be reached the store fails open
 *  (count 0: logins are not blocked) and says so through `warn`. */
class RedisLoginRetryStore final : public LoginRetryStore {
 public:
  using Warn = std::function<void(const std::string&)>;
  /// `url`: redis://[:password@]host[:port][/db]. Throws std::invalid_argument for a bad URL.
  RedisLoginRetryStore(const std::string& url, Warn warn);
  ~RedisLoginRetryStore() override;
  RedisLoginRetryStore(const RedisLoginRetryStore&) = delete;
  RedisLoginRetryStore& operator=(const RedisLoginRetryStore&) = delete;

  [[nodiscard]] int count(const std::string& key) override;
  void increment(const std::string& key) override;
  void max_out(const std::string& key, int limit, std::chrono::seconds ttl) override;

 private:
  struct Reply;
  // Runs a command; nullptr (and a warning) when Redis could not be reached or answered an error.
  std::unique_ptr<Reply> command(std::initializer_list<std::string> args);

  std::string host_;
  int port_ = 6379;
  std::string password_;
  int db_ = 0;
  Warn warn_;
  std::mutex mutex_;
  redisContext* ctx_ = nullptr;
};

}  // namespace midas_api
