// SPDX-License-Identifier: MIT
#include "midas/queue.hpp"
#include "url.hpp"

namespace midas {

result<std::unique_ptr<Queue>> connect(std::string_view url, ConnectOptions options) {
  MIDAS_TRY(parsed, detail::parse_url(url));
  if (parsed.scheme == "memory") {
    if (!parsed.host.empty() || !parsed.path.empty()) return errc::invalid_url;  // memory:// only
    return make_memory_queue(options);
  }
  if (parsed.scheme == "postgresql" || parsed.scheme == "postgres") {
    // The Postgres backend (libpq) is specified but not implemented in this version.
    return errc::backend_not_built;
  }
  if (parsed.scheme == "redis") {
    // The Redis backend (hiredis) is specified but not implemented in this version.
    return errc::backend_not_built;
  }
  return errc::unsupported_scheme;
}

}  // namespace midas
