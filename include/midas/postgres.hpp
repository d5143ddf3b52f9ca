// SPDX-License-Identifier: MIT
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "midas/log.hpp"
#include "midas/queue.hpp"

/// libpq's connection type, declared here so this header does not need libpq-fe.h: a `PGconn*`
/// converts to `pg_conn*`.
extern "C" {
struct pg_conn;
}

namespace midas {

/// What a Postgres URL cannot say. Query parameters of the URL (`schema`, `pool`, `migrate`,
/// `statement_timeout_ms`, `network_timeout_ms`) override these; other parameters go to libpq
/// unchanged.
struct PostgresOptions {
  std::string schema = "midas";  ///< Schema of the task table: [a-z_][a-z0-9_]{0,62}.
  /// Connections for queue calls. Two more claim and heartbeat, one LISTENs: at most
  /// pool_size + 3 per queue. They keep session state (LISTEN, SET): behind pgbouncer, use
  /// session pooling, not transaction pooling.
  int pool_size = 4;
  /// The server cancels a statement that runs longer (`SET statement_timeout`).
  Duration statement_timeout{std::chrono::seconds{30}};
  /// A reply still missing `statement_timeout + network_timeout` after its statement was sent
  /// means the server cannot be reached (a cut network, a frozen host): the connection is closed
  /// and the call fails with `backend_unavailable` (`in_doubt` for a state change), instead of
  /// waiting for TCP to give up, which takes minutes.
  Duration network_timeout{std::chrono::seconds{5}};
  Duration connect_timeout{std::chrono::seconds{5}};
  /// Three claims in a row that find fewer due tasks than they asked for, and take longer than
  /// this, switch their queue to a claim that visits only the due tasks, priority by priority:
  /// the plain claim also walks the tasks scheduled for later (4-9 ms a claim with 100000 of
  /// them, against 0.3-0.5 ms; the other claim takes 0.5-0.8 ms either way, mostly planning).
  /// The switch holds until a claim comes back full (a backlog) or for 10 s, when the plain
  /// claim is tried again. Zero: switch after every short claim.
  Duration slow_claim{std::chrono::milliseconds{2}};
  bool migrate = true;  ///< Apply pending migrations at connect (under an advisory lock).
  LogSink log = log_to_stderr;
};

/// Opens a Postgres-backed queue (`postgresql://user:pass@host:port/db?schema=midas&pool=8`).
/// `midas::connect()` calls this for postgresql:// and postgres:// URLs.
[[nodiscard]] result<std::unique_ptr<Queue>> connect_postgres(std::string_view url,
                                                              PostgresOptions options = {},
                                                              ConnectOptions connect = {});

/// Transactional enqueue (the outbox pattern): writes the tasks on the caller's connection, inside
/// the transaction the caller has open, so they exist if and only if the caller commits. This is
/// how a service avoids the dual-write bug — a business row committed while its task was lost, or
/// a task run for a row that was rolled back.
///
/// `conn` must be in an open transaction (`BEGIN` sent, no error): otherwise
/// `errc::invalid_state`, and nothing is written. Workers are woken when the transaction commits.
[[nodiscard]] result<std::vector<Enqueued>> enqueue_in_transaction(
    pg_conn* conn, std::span<const TaskSpec> specs, std::string_view schema = "midas",
    const Clock& clock = SystemClock::instance());

/// One task; see the batch overload.
[[nodiscard]] result<Enqueued> enqueue_in_transaction(pg_conn* conn, const TaskSpec& spec,
                                                      std::string_view schema = "midas",
                                                      const Clock& clock = SystemClock::instance());

}  // namespace midas
