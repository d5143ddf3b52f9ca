// SPDX-License-Identifier: MIT
#pragma once
/// Connections to one Redis server: a bounded pool of hiredis contexts, and a pipelined exchange
/// that says whether a failed command may have reached the server.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "midas/log.hpp"
#include "midas/result.hpp"
#include "redis/handles.hpp"

namespace midas::detail {

/// Where and how to connect.
struct RedisEndpoint {
  std::string host{};  ///< A host name or address; a path starting with '/' is a Unix socket.
  int port = 6379;
  std::optional<std::string> user{};      ///< ACL user (Redis 6+), with `password`.
  std::optional<std::string> password{};  ///< AUTH after connecting.
  int db = 0;                             ///< SELECT after connecting, unless 0.
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};

  /// "host:port" for messages.
  [[nodiscard]] std::string describe() const;
};

/// A command as its arguments, binary-safe.
using RedisCommand = std::vector<std::string>;

/// Opens one connection: connect, timeouts, keepalive, AUTH, SELECT. `why` receives hiredis's
/// message on failure. Errors: `errc::backend_unavailable`.
[[nodiscard]] result<RedisContextPtr> open_redis(const RedisEndpoint& endpoint, std::string& why);

/// Writes every command, then reads one reply per command, in order. Error replies are replies
/// (type REDIS_REPLY_ERROR): the caller reads them.
///
/// Errors: `errc::backend_unavailable` when nothing could be written (no command ran);
/// `lost_reply()` (errc::in_doubt) when the connection failed after a command was written: it may
/// have run. Either way the context has failed and must be dropped.
[[nodiscard]] result<std::vector<RedisReplyPtr>> exchange(redisContext& c,
                                                          std::span<const RedisCommand> commands);

/// True when an idle connection still looks usable: no EOF, no error, no stray bytes. Catches a
/// server that restarted while the connection sat in the pool, without a round trip.
[[nodiscard]] bool looks_alive(const redisContext& c) noexcept;

class RedisPool;

/// A connection taken from a pool; goes back on destruction, or is closed if marked failed.
class PooledConnection {
 public:
  PooledConnection(RedisPool& pool, RedisContextPtr ctx) noexcept;
  PooledConnection(PooledConnection&& other) noexcept;
  PooledConnection& operator=(PooledConnection&&) = delete;
  PooledConnection(const PooledConnection&) = delete;
  PooledConnection& operator=(const PooledConnection&) = delete;
  ~PooledConnection();

  [[nodiscard]] redisContext& context() noexcept { return *ctx_; }
  /// The context reported an error: close it instead of returning it.
  void mark_failed() noexcept { failed_ = true; }

 private:
  RedisPool* pool_;
  RedisContextPtr ctx_;
  bool failed_ = false;
};

/// At most `size` open connections to one server, shared by threads. Thread-safe.
///
/// A context that reported an error is closed, never reused. After a failed connect, further
/// connects wait for a backoff (doubling from `backoff_min` to `backoff_max`); meanwhile
/// `acquire` fails fast with `errc::backend_unavailable`.
class RedisPool {
 public:
  RedisPool(RedisEndpoint endpoint, std::size_t size, std::chrono::milliseconds backoff_min,
            std::chrono::milliseconds backoff_max, LogSink log);
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  /// An idle connection, or a new one while fewer than `size` are open; waits up to the
  /// endpoint's command timeout for one to come back (then `errc::timeout`).
  [[nodiscard]] result<PooledConnection> acquire();

  [[nodiscard]] const RedisEndpoint& endpoint() const noexcept { return endpoint_; }

 private:
  friend class PooledConnection;
  void give_back(RedisContextPtr ctx, bool failed) noexcept;
  result<RedisContextPtr> connect();

  using SteadyClock = std::chrono::steady_clock;
  const RedisEndpoint endpoint_;
  const std::size_t size_;
  const std::chrono::milliseconds backoff_min_;
  const std::chrono::milliseconds backoff_max_;
  const LogSink log_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<RedisContextPtr> idle_;
  std::size_t open_ = 0;
  std::chrono::milliseconds backoff_{0};
  SteadyClock::time_point next_connect_{};
  bool down_ = false;  ///< The last connect failed (logged once per outage).
};

}  // namespace midas::detail
