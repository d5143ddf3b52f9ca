// SPDX-License-Identifier: MIT
#pragma once
/// The one place where hiredis context errors and Redis error replies become `midas::errc`.

#include <hiredis/hiredis.h>

#include <string_view>
#include <system_error>

#include "midas/error.hpp"

namespace midas::detail {

/// A context error (`c.err`). The context is unusable afterwards: the caller drops it.
/// Whether the command may have run is decided by the caller (see `lost_reply`).
[[nodiscard]] inline std::error_code from_context(const redisContext& c) noexcept {
  switch (c.err) {
    case REDIS_ERR_IO:
    case REDIS_ERR_EOF:
      return errc::backend_unavailable;
#ifdef REDIS_ERR_TIMEOUT  // hiredis >= 1.0 only
    case REDIS_ERR_TIMEOUT:
      return errc::timeout;
#endif
    case REDIS_ERR_PROTOCOL:
      return errc::protocol_error;
    default:
      return errc::backend_unavailable;
  }
}

/// What a caller gets when a command was written to the server and its reply never came back:
/// the command may or may not have run. Only commands that are safe to repeat are sent again;
/// for the others this is `errc::in_doubt` (settle, rescue, requeue) or, for a producer whose
/// retry at worst stores a duplicate, `errc::backend_unavailable` (enqueue, claim).
[[nodiscard]] inline std::error_code lost_reply() noexcept { return errc::in_doubt; }

/// True for the error reply that says the script cache lacks a script (EVALSHA): load it and
/// send the call again, which is safe because the script did not run.
[[nodiscard]] inline bool is_noscript(std::string_view message) noexcept {
  return message.starts_with("NOSCRIPT");
}

/// An error reply (`REDIS_REPLY_ERROR`) by its leading code word.
[[nodiscard]] inline std::error_code from_reply_error(std::string_view message) noexcept {
  auto code_is = [&](std::string_view word) {
    return message.starts_with(word) &&
           (message.size() == word.size() || message[word.size()] == ' ');
  };
  // The server cannot serve right now but will: restarting, replica, failover, memory full,
  // a long script running, a cluster slot moving.
  for (std::string_view word : {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN",
                                "CLUSTERDOWN", "OOM", "NOREPLICAS", "MISCONF"}) {
    if (code_is(word)) return errc::backend_unavailable;
  }
  // Authentication refused: nothing midas can fix by retrying, but the server is "not available"
  // to this client until its configuration changes.
  for (std::string_view word : {"NOAUTH", "WRONGPASS", "NOPERM"}) {
    if (code_is(word)) return errc::backend_unavailable;
  }
  // MOVED/ASK (a cluster node that does not own the slot), WRONGTYPE (a key midas uses holds
  // something else), ERR (a script error, a bad argument): the server said something midas did
  // not expect.
  return errc::protocol_error;
}

}  // namespace midas::detail
