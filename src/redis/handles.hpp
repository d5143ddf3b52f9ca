// SPDX-License-Identifier: MIT
#pragma once
/// Owning handles for hiredis objects (STYLE.md rule 2). Private to the Redis backend.

#include <hiredis/hiredis.h>

#include <memory>

namespace midas::detail {

/// Frees a `redisContext` (and closes its socket).
struct RedisContextDeleter {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
/// One connection. Once it reports an error (`err != 0`) it is dropped, never reused.
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

/// Frees a reply tree.
struct RedisReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

}  // namespace midas::detail
