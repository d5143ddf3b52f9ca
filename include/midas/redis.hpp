// SPDX-License-Identifier: MIT
#pragma once
/// The Redis backend's own entry point, for what a URL cannot say. `midas::connect("redis://...")`
/// reaches the same backend with default options. Declared only when midas was built with it
/// (`MIDAS_HAS_REDIS`); hiredis stays out of every public header.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "midas/log.hpp"
#include "midas/queue.hpp"
#include "midas/result.hpp"

#if defined(MIDAS_HAS_REDIS)

namespace midas {

/// Options of the Redis backend. Query parameters of the URL (`prefix`, `pool`,
/// `connect_timeout_ms`, `command_timeout_ms`) win over the values given here.
struct RedisOptions {
  /// Namespaces every key midas writes: `{<key_prefix>:<queue>}:...` and `<key_prefix>:queues`.
  /// Same character set as queue names.
  std::string key_prefix = "midas";
  /// Connections for commands; a `redisContext` is not thread-safe, so each call takes one from
  /// the pool. Blocking waits (`wait_for_tasks`) use connections of their own.
  std::size_t pool_size = 8;
  /// Time allowed to open a connection (TCP connect, AUTH, SELECT).
  std::chrono::milliseconds connect_timeout{2000};
  /// Time allowed for one command's reply; also the longest wait for a free pooled connection.
  std::chrono::milliseconds command_timeout{5000};
  /// After a failed connect, calls fail fast with `errc::backend_unavailable` for this long,
  /// doubling up to `reconnect_backoff_max`, so a down server is not hammered.
  std::chrono::milliseconds reconnect_backoff_min{50};
  std::chrono::milliseconds reconnect_backoff_max{2000};
  /// Reads `appendonly`, `appendfsync` and `maxmemory-policy` at connect and warns (through
  /// `log`, and in `Queue::stats().durability_warnings`) when tasks could be lost.
  bool check_durability = true;
  /// Where the backend reports durability warnings and reconnects.
  LogSink log = log_to_stderr;
};

/// Opens a Redis-backed queue: `redis://[[user]:password@]host[:port][/db][?prefix=midas&pool=8]`.
///
/// Connects once to check the server, loads the Lua scripts every state transition runs as, and
/// checks durability settings. Errors: `errc::invalid_url` (bad URL or parameter),
/// `errc::backend_unavailable` (no server, refused AUTH, server still loading).
[[nodiscard]] result<std::unique_ptr<Queue>> connect_redis(std::string_view url,
                                                           RedisOptions options = {},
                                                           ConnectOptions connect_options = {});

}  // namespace midas

#endif  // MIDAS_HAS_REDIS
