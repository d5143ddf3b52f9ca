// SPDX-License-Identifier: MIT
#include "midas/queue.hpp"
#ifdef MIDAS_HAS_REDIS
#include "midas/redis.hpp"
#endif
#ifdef MIDAS_HAS_POSTGRES
#include "midas/postgres.hpp"
#endif
#include "url.hpp"

namespace midas {

result<std::unique_ptr<Queue>> connect(std::string_view url, ConnectOptions options) {
  MIDAS_TRY(parsed, detail::parse_url(url));
  if (parsed.scheme == "memory") {
    if (!parsed.host.empty() || !parsed.path.empty()) return errc::invalid_url;  // memory:// only
    return make_memory_queue(options);
  }
  if (parsed.scheme == "postgresql" || parsed.scheme == "postgres") {
#ifdef MIDAS_HAS_POSTGRES
    PostgresOptions pg;
    pg.log = options.log;
    return connect_postgres(url, std::move(pg), std::move(options));
#else
    return errc::backend_not_built;  // built with MIDAS_WITH_POSTGRES=OFF
#endif
  }
  if (parsed.scheme == "redis") {
#ifdef MIDAS_HAS_REDIS
    RedisOptions redis;
    redis.log = options.log;
    return connect_redis(url, std::move(redis), std::move(options));
#else
    return errc::backend_not_built;  // built with MIDAS_WITH_REDIS=OFF
#endif
  }
  return errc::unsupported_scheme;
}

}  // namespace midas
