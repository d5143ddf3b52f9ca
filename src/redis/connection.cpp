// SPDX-License-Identifier: MIT
#include "redis/connection.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <utility>

#include "redis/errors.hpp"

namespace midas::detail {
namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  const auto ms = std::max<std::chrono::milliseconds::rep>(d.count(), 1);
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms % 1000) * 1000);
  return tv;
}

// Runs one command during connection setup; false (with `why`) on any failure or error reply.
bool setup_command(redisContext& c, const RedisCommand& command, std::string& why) {
  auto replies = exchange(c, std::span<const RedisCommand>{&command, 1});
  if (!replies) {
    why = c.errstr;
    return false;
  }
  const redisReply& r = *replies.value().front();
  if (r.type == REDIS_REPLY_ERROR) {
    why = std::string{r.str, r.len};
    return false;
  }
  return true;
}

}  // namespace

std::string RedisEndpoint::describe() const {
  if (!host.empty() && host.front() == '/') return host;
  return host + ":" + std::to_string(port);
}

result<RedisContextPtr> open_redis(const RedisEndpoint& endpoint, std::string& why) {
  RedisContextPtr c;
  if (!endpoint.host.empty() && endpoint.host.front() == '/') {
    c.reset(
        redisConnectUnixWithTimeout(endpoint.host.c_str(), to_timeval(endpoint.connect_timeout)));
  } else {
    c.reset(redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port,
                                    to_timeval(endpoint.connect_timeout)));
  }
  if (!c) {
    why = "out of memory";
    return errc::backend_unavailable;
  }
  if (c->err != 0) {
    why = c->errstr;
    return errc::backend_unavailable;
  }
  // Setup runs under the connect timeout, commands under the command timeout.
  if (redisSetTimeout(c.get(), to_timeval(endpoint.connect_timeout)) != REDIS_OK ||
      (c->connection_type == REDIS_CONN_TCP && redisEnableKeepAlive(c.get()) != REDIS_OK)) {
    why = c->errstr;
    return errc::backend_unavailable;
  }
  if (endpoint.password) {
    RedisCommand auth{"AUTH"};
    if (endpoint.user && !endpoint.user->empty()) auth.push_back(*endpoint.user);
    auth.push_back(*endpoint.password);
    if (!setup_command(*c, auth, why)) return errc::backend_unavailable;
  }
  if (endpoint.db != 0) {
    if (!setup_command(*c, {"SELECT", std::to_string(endpoint.db)}, why)) {
      return errc::backend_unavailable;
    }
  }
  if (redisSetTimeout(c.get(), to_timeval(endpoint.command_timeout)) != REDIS_OK) {
    why = c->errstr;
    return errc::backend_unavailable;
  }
  return c;
}

result<std::vector<RedisReplyPtr>> exchange(redisContext& c,
                                            std::span<const RedisCommand> commands) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& command : commands) {
    argv.clear();
    lengths.clear();
    for (const auto& arg : command) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(&c, static_cast<int>(argv.size()), argv.data(), lengths.data()) !=
        REDIS_OK) {
      return errc::backend_unavailable;  // out of memory formatting: nothing was written
    }
  }
  // Write everything first, so we know whether any byte left: a write that fails before the
  // first byte means no command can have run.
  bool wrote = false;
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(&c, &done) != REDIS_OK) {
      return wrote ? lost_reply() : from_context(c);
    }
    wrote = true;
  }
  std::vector<RedisReplyPtr> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* reply = nullptr;
    if (redisGetReply(&c, &reply) != REDIS_OK || reply == nullptr) {
      return lost_reply();
    }
    replies.emplace_back(static_cast<redisReply*>(reply));
  }
  return replies;
}

bool looks_alive(const redisContext& c) noexcept {
  if (c.err != 0 || c.fd < 0) return false;
  char byte = 0;
  const auto n = ::recv(c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return false;  // 0: the server closed it; > 0: bytes nobody asked for
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

PooledConnection::PooledConnection(RedisPool& pool, RedisContextPtr ctx) noexcept
    : pool_{&pool}, ctx_{std::move(ctx)} {}

PooledConnection::PooledConnection(PooledConnection&& other) noexcept
    : pool_{other.pool_}, ctx_{std::move(other.ctx_)}, failed_{other.failed_} {}

PooledConnection::~PooledConnection() {
  if (!ctx_) return;
  const bool failed = failed_ || ctx_->err != 0;  // before the move below empties ctx_
  pool_->give_back(std::move(ctx_), failed);
}

RedisPool::RedisPool(RedisEndpoint endpoint, std::size_t size,
                     std::chrono::milliseconds backoff_min, std::chrono::milliseconds backoff_max,
                     LogSink log)
    : endpoint_{std::move(endpoint)},
      size_{std::max<std::size_t>(size, 1)},
      backoff_min_{backoff_min},
      backoff_max_{std::max(backoff_min, backoff_max)},
      log_{std::move(log)} {
  idle_.reserve(size_);  // give_back never allocates
}

result<PooledConnection> RedisPool::acquire() {
  std::unique_lock lock{mutex_};
  const auto deadline = SteadyClock::now() + endpoint_.command_timeout;
  for (;;) {
    while (!idle_.empty()) {
      RedisContextPtr ctx = std::move(idle_.back());
      idle_.pop_back();
      if (looks_alive(*ctx)) return PooledConnection{*this, std::move(ctx)};
      --open_;  // dead while idle (server restarted): close it, try the next
      lock.unlock();
      ctx.reset();
      lock.lock();
    }
    if (open_ < size_) {
      if (down_ && SteadyClock::now() < next_connect_) return errc::backend_unavailable;
      ++open_;
      lock.unlock();
      auto ctx = connect();
      if (!ctx) {
        lock.lock();
        --open_;
        returned_.notify_one();
        return ctx.error();
      }
      return PooledConnection{*this, std::move(ctx).value()};
    }
    if (returned_.wait_until(lock, deadline) == std::cv_status::timeout) return errc::timeout;
  }
}

result<RedisContextPtr> RedisPool::connect() {
  std::string why;
  auto ctx = open_redis(endpoint_, why);
  std::lock_guard lock{mutex_};
  if (!ctx) {
    backoff_ = std::clamp(backoff_ * 2, backoff_min_, backoff_max_);
    next_connect_ = SteadyClock::now() + backoff_;
    if (!down_ && log_) {
      log_(LogLevel::warning, "redis: cannot connect to " + endpoint_.describe() + " (" + why +
                                  "); calls fail with backend_unavailable until it is back");
    }
    down_ = true;
    return ctx.error();
  }
  if (down_ && log_) log_(LogLevel::info, "redis: connected to " + endpoint_.describe() + " again");
  down_ = false;
  backoff_ = std::chrono::milliseconds{0};
  return ctx;
}

void RedisPool::give_back(RedisContextPtr ctx, bool failed) noexcept {
  {
    std::lock_guard lock{mutex_};
    if (!failed) {
      idle_.push_back(std::move(ctx));
    } else {
      --open_;
    }
  }
  returned_.notify_one();
  ctx.reset();  // a failed context is closed outside the lock
}

}  // namespace midas::detail
