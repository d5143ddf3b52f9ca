// SPDX-License-Identifier: MIT
// The Postgres backend: one table, every transition one statement, fenced by the lease token.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "detail/micros.hpp"
#include "detail/random.hpp"
#include "detail/record_json.hpp"
#include "handles.hpp"
#include "midas/postgres.hpp"
#include "migrations.hpp"
#include "rows.hpp"
#include "sqlstate.hpp"
#include "url.hpp"

namespace midas {
namespace {

using detail::cell_text;
using detail::from_us;
using detail::parse_int;
using detail::PgConnPtr;
using detail::PgResultPtr;
using detail::task_from_row;
using nlohmann::json;

std::int64_t to_us(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

bool is_settled_status(TaskStatus s) { return s == TaskStatus::retrying || is_finished(s); }

bool is_valid_schema(std::string_view s) {
  if (s.empty() || s.size() > 63 || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Replaces every "@S" in `sql` with the quoted schema.
std::string with_schema(std::string_view sql, std::string_view schema) {
  std::string out;
  std::string quoted;  // built by appends: GCC 12 warns (-Wrestrict) on "\"" + string at -O2
  quoted.reserve(schema.size() + 2);
  quoted.append(1, '"').append(schema).append(1, '"');
  std::string channel;  // the wake-up channel as a literal: 'midas:<schema>'
  channel.append("'midas:").append(schema).append(1, '\'');
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '@' && i + 1 < sql.size() && (sql[i + 1] == 'S' || sql[i + 1] == 'C')) {
      out += sql[i + 1] == 'S' ? quoted : channel;
      ++i;
    } else {
      out += sql[i];
    }
  }
  return out;
}

// Statement parameters in text format; a nullopt is SQL NULL.
class Params {
 public:
  Params& add(std::string v) {
    values_.emplace_back(std::move(v));
    return *this;
  }
  Params& add(std::int64_t v) { return add(std::to_string(v)); }
  Params& add(int v) { return add(std::to_string(v)); }
  Params& add(TimePoint t) { return add(to_us(t)); }
  Params& add(const std::optional<std::string>& v) {
    values_.push_back(v);
    return *this;
  }
  Params& add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  [[nodiscard]] std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }
  [[nodiscard]] int size() const { return static_cast<int>(values_.size()); }

 private:
  std::vector<std::optional<std::string>> values_;
};

// Maps a failed statement to errc. A reply lost on a statement that changes a task's state
// (`acknowledging`) is in doubt: it may have committed.
std::error_code statement_error(PGconn* conn, const PGresult* r, bool acknowledging) {
  if (r != nullptr) {
    if (const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE)) {
      auto ec = detail::from_sqlstate(state);
      if (ec == errc::backend_unavailable && acknowledging) return errc::in_doubt;
      return ec;
    }
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    return acknowledging ? errc::in_doubt : make_error_code(errc::backend_unavailable);
  }
  return errc::protocol_error;
}

// Collects the reply to what was sent on `conn`, like PQexec: the last result, or the first one
// that failed (a COPY stops at its COPY_IN result). Waits at most `timeout` (zero: no limit); past
// it the server is presumed unreachable (a cut network, a frozen host): the socket is shut, so the
// connection reports failure (CONNECTION_BAD, dropped by the pool) instead of blocking its caller
// until TCP gives up, which takes minutes. `timed_out` tells the caller. `rows`, if given, gets
// the first result with rows (a query string whose SELECT comes before a COPY).
PgResultPtr await_reply(PGconn* conn, Duration timeout, bool& timed_out,
                        PgResultPtr* rows = nullptr) {
  timed_out = false;
  const bool limited = timeout.count() > 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto succeeded = [](const PGresult* r) {
    const auto status = PQresultStatus(r);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY ||
           status == PGRES_COPY_IN;
  };
  PgResultPtr last;
  for (;;) {
    while (limited && PQisBusy(conn) != 0) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd fd{PQsocket(conn), POLLIN, 0};
      const int rc = left.count() > 0 ? ::poll(&fd, 1, static_cast<int>(left.count())) : 0;
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0) {
        timed_out = true;
        // PQgetResult now fails at once. Read to the end of the stream, so that libpq marks the
        // connection broken (and the pool drops it) even if the reply came in just now.
        ::shutdown(PQsocket(conn), SHUT_RDWR);
        for (int i = 0; i < 64 && PQconsumeInput(conn) == 1; ++i) {
        }
      }
      if (rc <= 0 || PQconsumeInput(conn) == 0) break;  // PQgetResult reports the failure
    }
    PGresult* raw = PQgetResult(conn);
    if (raw == nullptr) break;
    PgResultPtr r{raw};
    const auto status = PQresultStatus(r.get());
    if (rows != nullptr && !*rows && status == PGRES_TUPLES_OK) {
      *rows = std::move(r);
      continue;
    }
    if (!last || succeeded(last.get())) last = std::move(r);
    if (status == PGRES_COPY_IN) break;
  }
  return last;
}

// Where a statement's warnings go, and how long its reply may take (see await_reply).
struct Io {
  LogSink log;
  Duration reply_timeout{0};
};

// Maps the reply `r` to a statement's result: the result, or the error (logged).
result<PgResultPtr> outcome(PGconn* conn, PgResultPtr r, bool timed_out, bool acknowledging,
                            const Io& io) {
  const LogSink& log = io.log;
  const Duration reply_timeout = io.reply_timeout;
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (!timed_out &&
      (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN)) {
    return r;
  }
  if (timed_out) {
    if (log) {
      log(LogLevel::warning, "postgres: no reply within " + std::to_string(reply_timeout.count()) +
                                 " ms: the connection is presumed cut and is closed (a network "
                                 "outage or a frozen server; see network_timeout_ms)");
    }
    return acknowledging ? errc::in_doubt : make_error_code(errc::backend_unavailable);
  }
  auto ec = statement_error(conn, r.get(), acknowledging);
  if (log && ec != errc::duplicate_task) {
    log(LogLevel::warning,
        std::string{"postgres: "} + (r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn)));
  }
  return ec;
}

// Awaits the reply to what `sent` (a PQsend* result) sent and maps a failure to errc.
result<PgResultPtr> complete(PGconn* conn, int sent, bool acknowledging, const Io& io) {
  bool timed_out = false;
  PgResultPtr r = sent == 1 ? await_reply(conn, io.reply_timeout, timed_out) : PgResultPtr{};
  return outcome(conn, std::move(r), timed_out, acknowledging, io);
}

// Runs a statement; `sql` is sent with the parameters (no server-side preparation). Without
// parameters, `sql` may hold several statements (migrations).
result<PgResultPtr> exec(PGconn* conn, const std::string& sql, const Params& params,
                         bool acknowledging, const Io& io) {
  auto values = params.pointers();
  const int sent = params.size() == 0 ? PQsendQuery(conn, sql.c_str())
                                      : PQsendQueryParams(conn, sql.c_str(), params.size(), nullptr,
                                                          values.data(), nullptr, nullptr, 0);
  return complete(conn, sent, acknowledging, io);
}

// One of the queue's frequent statements. Each is prepared once per connection, under the name
// "midas_<slot>", so later calls skip the server's parse and analysis: for the enqueue statement
// that is 0.4 ms of a 0.5 ms call. Plans stay per call (plan_cache_mode = force_custom_plan in
// every session): a generic plan made while the table looked empty would scan it whole.
struct Statement {
  Statement() = default;
  Statement(std::string text, int n) : sql{std::move(text)}, slot{n} {}
  std::string sql;
  int slot = 0;                                        // 0..31: its bit in Conn::prepared
  std::string name = "midas_" + std::to_string(slot);  // built once, not per call
};

// A connection, and the statements (bits by slot) already prepared on it; `prepared` is null for
// a caller's own connection, on which nothing is prepared.
struct Conn {
  PGconn* pg;
  std::uint32_t* prepared;
};

// True if `r` failed because the connection's prepared statement is gone (a pooler or
// DISCARD ALL dropped it: 26000) or no longer fits the table (a migration changed a returned
// column: 0A000). The statement did not run, so preparing it again and retrying is safe.
bool prepared_statement_stale(const PGresult* r) {
  if (r == nullptr || PQresultStatus(r) != PGRES_FATAL_ERROR) return false;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return state != nullptr &&
         (std::string_view{state} == "26000" || std::string_view{state} == "0A000");
}

result<PgResultPtr> exec(Conn c, const Statement& st, const Params& params, bool acknowledging,
                         const Io& io) {
  if (c.prepared == nullptr) return exec(c.pg, st.sql, params, acknowledging, io);
  const std::uint32_t bit = std::uint32_t{1} << st.slot;
  const char* name = st.name.c_str();
  const auto values = params.pointers();
  for (int attempt = 0;; ++attempt) {
    if ((*c.prepared & bit) == 0) {
      const int sent = PQsendPrepare(c.pg, name, st.sql.c_str(), params.size(), nullptr);
      MIDAS_TRYV(complete(c.pg, sent, false, io));
      *c.prepared |= bit;
    }
    const int sent =
        PQsendQueryPrepared(c.pg, name, params.size(), values.data(), nullptr, nullptr, 0);
    bool timed_out = false;
    PgResultPtr r = sent == 1 ? await_reply(c.pg, io.reply_timeout, timed_out) : PgResultPtr{};
    if (attempt == 0 && !timed_out && prepared_statement_stale(r.get()) &&
        PQtransactionStatus(c.pg) == PQTRANS_IDLE) {
      // Whatever dropped or outdated this one may have done so to all: start over.
      MIDAS_TRYV(exec(c.pg, "DEALLOCATE ALL", Params{}, false, io));
      *c.prepared = 0;
      continue;
    }
    return outcome(c.pg, std::move(r), timed_out, acknowledging, io);
  }
}

// ---- SQL -------------------------------------------------------------------------------------

#define MIDAS_TS(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 microsecond')"
#define MIDAS_US(c) "(extract(epoch from " c ") * 1000000)::bigint"

constexpr std::string_view task_columns =
    "t.id::text, t.type, t.queue, t.params::text, t.status, t.attempt, t.max_attempts, "
    "t.priority, " MIDAS_US("t.run_at") ", t.unique_key, " MIDAS_US("t.created_at") ", " MIDAS_US(
        "t.updated_at") ", " MIDAS_US("t.finished_at") ", t.lease_owner, t.lease_token, " MIDAS_US("t.lease_expires_at") ", "
                                                                                                                         "t.checkpoint::text, t.history::text";

constexpr std::string_view enqueue_sql = R"sql(
WITH input AS MATERIALIZED (
  SELECT nextval(pg_get_serial_sequence('@S.midas_tasks', 'id')) AS id, i.*
  FROM jsonb_to_recordset($1::jsonb) AS i(n int, type text, queue text, params jsonb, priority int,
                                           run_at bigint, unique_key text, max_attempts int)
),
ins AS (
  INSERT INTO @S.midas_tasks AS t (id, type, queue, params, status, max_attempts, priority, run_at,
                                   unique_key, created_at, updated_at)
  SELECT id, type, queue, params, 'pending', max_attempts, priority, )sql" MIDAS_TS(
    "run_at") R"sql(,
         unique_key, )sql" MIDAS_TS("$2") ", " MIDAS_TS("$2") R"sql(
  FROM input ORDER BY n
  ON CONFLICT (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'retrying') DO NOTHING
  RETURNING t.id, t.queue, t.unique_key
),
-- Wakes the workers of each queue that got a task, at commit (see migration 4).
notified AS (
  SELECT count(pg_notify(@C, q.queue)) AS n FROM (SELECT DISTINCT queue FROM ins) q
)
SELECT input.n, COALESCE(ins.id, batch.id, existing.id)::text, ins.id IS NULL
FROM input
CROSS JOIN notified
LEFT JOIN ins ON ins.id = input.id
LEFT JOIN LATERAL (
  SELECT b.id FROM ins b
  WHERE ins.id IS NULL AND b.queue = input.queue AND b.unique_key = input.unique_key LIMIT 1
) batch ON true
LEFT JOIN LATERAL (
  SELECT e.id FROM @S.midas_tasks e
  WHERE ins.id IS NULL AND e.queue = input.queue AND e.unique_key = input.unique_key
    AND e.status IN ('pending', 'running', 'retrying') LIMIT 1
) existing ON true
ORDER BY input.n)sql";

// Builds the JSON document the enqueue statement reads. Specs must be validated.
std::string enqueue_document(std::span<const TaskSpec> specs, std::span<const std::size_t> which,
                             TimePoint now) {
  json rows = json::array();
  for (std::size_t n : which) {
    const TaskSpec& s = specs[n];
    json row{{"n", n},
             {"type", s.type},
             {"queue", s.queue},
             {"params", s.params},
             {"priority", s.priority},
             {"run_at", to_us(s.run_at.value_or(now + s.delay))},
             {"max_attempts", s.max_attempts > 0 ? s.max_attempts : default_max_attempts}};
    row["unique_key"] = s.unique_key ? json(*s.unique_key) : json();
    rows.push_back(std::move(row));
  }
  return rows.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Runs the enqueue statement on `conn` until every spec has an id (a row can come back without
// one when the unique key's holder finished between the insert and the look-up).
result<std::vector<Enqueued>> run_enqueue(Conn conn, const Statement& sql,
                                          std::span<const TaskSpec> specs, TimePoint now,
                                          const Io& io) {
  for (const auto& spec : specs) {
    MIDAS_TRYV(validate(spec));
  }
  std::vector<Enqueued> out(specs.size());
  std::vector<std::size_t> todo(specs.size());
  for (std::size_t i = 0; i < todo.size(); ++i) todo[i] = i;
  for (int round = 0; !todo.empty(); ++round) {
    if (round == 5) return errc::conflict;
    Params p;
    p.add(enqueue_document(specs, todo, now)).add(now);
    MIDAS_TRY(r, exec(conn, sql, p, false, io));
    std::vector<std::size_t> again;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      auto n = parse_int(PQgetvalue(r.get(), row, 0));
      if (!n || *n < 0 || static_cast<std::size_t>(*n) >= out.size()) return errc::protocol_error;
      const char* id = cell_text(r.get(), row, 1);
      if (id == nullptr) {
        again.push_back(static_cast<std::size_t>(*n));
        continue;
      }
      out[static_cast<std::size_t>(*n)] = Enqueued{id, PQgetvalue(r.get(), row, 2)[0] == 't'};
    }
    todo = std::move(again);
  }
  return out;
}

// ---- COPY: the bulk path of enqueue_batch ----------------------------------------------------

// Rows in COPY's binary format (https://www.postgresql.org/docs/current/sql-copy.html): the
// server reads integers and timestamps as they are, where the text format made it parse three
// timestamps and two integers per row (a fifth of the server's time on a 1000-task batch) and
// made the client format them.
class BinaryCopy {
 public:
  explicit BinaryCopy(std::size_t rows) {
    data_.reserve(32 + rows * 140);
    static constexpr char signature[] = "PGCOPY\n\377\r\n";  // 11 bytes with its final NUL
    data_.append(signature, sizeof signature);
    put_int(std::uint32_t{0}, 4);  // flags
    put_int(std::uint32_t{0}, 4);  // header extension length
  }
  void row(std::uint16_t fields) { put_int(fields, 2); }
  // Returns where the value starts, for patch_int8.
  std::size_t int8(std::int64_t v) {
    put_int(std::uint32_t{8}, 4);
    const std::size_t at = data_.size();
    put_int(static_cast<std::uint64_t>(v), 8);
    return at;
  }
  static void patch_int8(std::string& data, std::size_t at, std::int64_t v) {
    for (int i = 7; i >= 0; --i) {
      data[at + static_cast<std::size_t>(i)] =
          static_cast<char>(static_cast<std::uint64_t>(v) & 0xff);
      v = static_cast<std::int64_t>(static_cast<std::uint64_t>(v) >> 8);
    }
  }
  void int4(std::int32_t v) {
    put_int(std::uint32_t{4}, 4);
    put_int(static_cast<std::uint32_t>(v), 4);
  }
  void text(std::string_view v) {
    put_int(static_cast<std::uint32_t>(v.size()), 4);
    data_.append(v);
  }
  // jsonb's binary form is a version byte, 1, and the JSON text.
  void jsonb(std::string_view v) {
    put_int(static_cast<std::uint32_t>(v.size() + 1), 4);
    data_ += '\x01';
    data_.append(v);
  }
  // timestamptz: microseconds since 2000-01-01 00:00 UTC.
  void timestamptz(std::int64_t unix_us) {
    constexpr std::int64_t pg_epoch_us = 946'684'800'000'000;
    (void)int8(unix_us - pg_epoch_us);
  }
  std::string& finish() {
    put_int(std::uint16_t{0xffff}, 2);  // the trailer: a field count of -1
    return data_;
  }

 private:
  template <class T>
  void put_int(T v, int bytes) {
    for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
      data_ += static_cast<char>((static_cast<std::uint64_t>(v) >> shift) & 0xff);
    }
  }
  std::string data_;
};

// Enqueues validated specs without unique keys with COPY, in one round trip: one query string
// asks for the ids from the sequence and opens the COPY. The rows are encoded while the server
// draws the ids, each with a blank id that is filled in when they arrive; then the rows go out
// in one COPY (all or none: one statement). Text COPY in two round trips gave 64-81k tasks/s on
// 1000-task batches against 46-47k/s through INSERT ... SELECT FROM jsonb_to_recordset; binary
// rows added about 8 %, the single round trip about 5 % (medians of alternating runs).
result<std::vector<Enqueued>> copy_enqueue(PGconn* pg, const std::string& ids_sql,
                                           const std::string& copy_sql,
                                           const std::string& notify_channel,
                                           std::span<const TaskSpec> specs, TimePoint now,
                                           const Io& io) {
  // A simple query (several statements cannot take parameters): the count is a number we made,
  // the queue names are validated ([A-Za-z0-9_.:-]). The statements run in one implicit
  // transaction, so the NOTIFYs (one per queue, after the COPY) reach the listeners at commit.
  std::string sql = ids_sql + std::to_string(specs.size()) + ");" + copy_sql;
  std::set<std::string_view> queues;
  for (const TaskSpec& s : specs) {
    if (queues.insert(s.queue).second) {
      sql.append(";NOTIFY ").append(notify_channel).append(", '").append(s.queue).append("'");
    }
  }
  bool sent = PQsendQuery(pg, sql.c_str()) == 1;

  const std::int64_t now_us = to_us(now);
  BinaryCopy copy{specs.size()};
  std::vector<std::size_t> id_at;
  id_at.reserve(specs.size());
  for (const TaskSpec& s : specs) {
    // The columns of copy_sql, in order.
    copy.row(10);
    id_at.push_back(copy.int8(0));
    copy.text(s.type);
    copy.text(s.queue);
    copy.jsonb(s.params.dump(-1, ' ', false, json::error_handler_t::replace));
    copy.text("pending");
    copy.int4(s.max_attempts > 0 ? s.max_attempts : default_max_attempts);
    copy.int4(s.priority);
    copy.timestamptz(to_us(s.run_at.value_or(now + s.delay)));
    copy.timestamptz(now_us);
    copy.timestamptz(now_us);
  }
  std::string& data = copy.finish();

  bool timed_out = false;
  PgResultPtr ids;
  PgResultPtr reply = sent ? await_reply(pg, io.reply_timeout, timed_out, &ids) : PgResultPtr{};
  std::vector<Enqueued> out;
  const bool copying = sent && !timed_out && reply && PQresultStatus(reply.get()) == PGRES_COPY_IN;
  if (copying) {
    bool ids_ok = ids && PQntuples(ids.get()) == static_cast<int>(specs.size());
    out.reserve(specs.size());
    for (std::size_t i = 0; ids_ok && i < specs.size(); ++i) {
      const char* id = PQgetvalue(ids.get(), static_cast<int>(i), 0);
      const auto value = parse_int(id);
      ids_ok = value.has_value();
      if (ids_ok) BinaryCopy::patch_int8(data, id_at[i], *value);
      out.push_back(Enqueued{id, false});
    }
    if (!ids_ok) {
      // The COPY is ended with an error, so the server stores nothing and the connection is
      // ready for the next statement.
      (void)PQputCopyEnd(pg, "midas: the ids did not arrive");
      (void)await_reply(pg, io.reply_timeout, timed_out);
      if (io.log) io.log(LogLevel::warning, "postgres: COPY: the ids did not arrive");
      return errc::protocol_error;
    }
    // In pieces: one CopyData message may not pass 1 GB, nor an int.
    constexpr std::size_t piece = std::size_t{1} << 20;
    for (std::size_t at = 0; sent && at < data.size(); at += piece) {
      const std::size_t n = std::min(piece, data.size() - at);
      sent = PQputCopyData(pg, data.data() + at, static_cast<int>(n)) == 1;
    }
    sent = sent && PQputCopyEnd(pg, nullptr) == 1;
    reply = await_reply(pg, io.reply_timeout, timed_out);
  }
  if (sent && reply && PQresultStatus(reply.get()) == PGRES_COMMAND_OK && !timed_out) return out;
  const auto ec = timed_out ? make_error_code(errc::backend_unavailable)
                            : statement_error(pg, reply.get(), false);
  if (io.log) {
    io.log(LogLevel::warning,
           std::string{"postgres: COPY: "} +
               (timed_out ? "no reply in time, the connection is closed"
                          : (reply ? PQresultErrorMessage(reply.get()) : PQerrorMessage(pg))));
  }
  return ec;
}

// A Postgres array literal of validated names: {"a","b"}.
result<std::string> name_array(std::span<const std::string> names) {
  std::string out = "{";
  for (const auto& n : names) {
    if (!is_valid_name(n)) return errc::invalid_argument;
    if (out.size() > 1) out += ',';
    out += '"' + n + '"';
  }
  return out + "}";
}

// ---- connections -----------------------------------------------------------------------------

struct Settings {
  std::string libpq_uri;  // the URL without midas's own parameters
  PostgresOptions options;
};

result<Settings> parse_settings(std::string_view url, PostgresOptions options) {
  MIDAS_TRY(parsed, detail::parse_url(url));
  if (parsed.scheme != "postgresql" && parsed.scheme != "postgres") return errc::unsupported_scheme;
  if (auto s = parsed.param("schema")) options.schema = *s;
  if (auto p = parsed.param("pool")) {
    auto n = parse_int(*p);
    if (!n || *n < 1 || *n > 256) return errc::invalid_url;
    options.pool_size = static_cast<int>(*n);
  }
  if (auto m = parsed.param("migrate")) {
    if (*m != "true" && *m != "false") return errc::invalid_url;
    options.migrate = *m == "true";
  }
  for (const auto& [key, field] : {std::pair{"statement_timeout_ms", &options.statement_timeout},
                                   std::pair{"network_timeout_ms", &options.network_timeout}}) {
    if (auto v = parsed.param(key)) {
      auto ms = parse_int(*v);
      if (!ms || *ms < 1 || *ms > 86'400'000) return errc::invalid_url;
      *field = Duration{*ms};
    }
  }
  if (!is_valid_schema(options.schema)) return errc::invalid_argument;
  // Keep every other query parameter, as written, for libpq.
  std::string_view base = url;
  std::string query;
  if (auto q = url.find('?'); q != std::string_view::npos) {
    base = url.substr(0, q);
    std::string_view rest = url.substr(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      std::string_view key = pair.substr(0, pair.find('='));
      if (pair.empty() || key == "schema" || key == "pool" || key == "migrate" ||
          key == "statement_timeout_ms" || key == "network_timeout_ms") {
        continue;
      }
      query += query.empty() ? "?" : "&";
      query += pair;
    }
  }
  return Settings{std::string{base} + query, std::move(options)};
}

// Logs why a connection failed; while a server is down, the same reason once every 10 s, not once
// per attempt.
void log_connect_failure(const LogSink& log, const std::string& why) {
  if (!log) return;
  static std::mutex mutex;
  static std::string last;
  static auto last_at = std::chrono::steady_clock::time_point{};
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock{mutex};
    if (why == last && now - last_at < std::chrono::seconds{10}) return;
    last = why;
    last_at = now;
  }
  log(LogLevel::error, "postgres: cannot connect (" + why +
                           "); check the URL, that the server runs, and pg_hba.conf");
}

// How long a statement's reply may take before the connection is presumed cut: the server's own
// statement timeout, plus the network timeout.
// A statement timeout of 0 is no limit for the server, and so none here either.
Io io_of(const PostgresOptions& o) {
  if (o.statement_timeout.count() <= 0) return Io{o.log, Duration{0}};
  return Io{o.log, o.statement_timeout + o.network_timeout};
}

result<PgConnPtr> open_connection(const Settings& s, std::string_view session = {}) {
  const std::string timeout = std::to_string(std::max<std::int64_t>(
      1, std::chrono::ceil<std::chrono::seconds>(s.options.connect_timeout).count()));
  // TCP keepalives notice a server that vanished (a cut network, a dead host) while a connection
  // is idle, the LISTEN one included: 10 s idle, then 3 probes 5 s apart. tcp_user_timeout does
  // the same for data sent and never acknowledged (a statement or COPY whose send blocks, which
  // the reply timeout does not cover): network_timeout. Before `dbname`, so the URL's own
  // settings win.
  const std::string user_timeout = std::to_string(
      std::max<std::int64_t>(1000, std::chrono::milliseconds{s.options.network_timeout}.count()));
  // fallback_application_name: "midas" unless the URL names the application itself.
  const char* keys[] = {"keepalives",       "keepalives_idle",           "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout",          "dbname",
                        "connect_timeout",  "fallback_application_name", nullptr};
  const char* values[] = {
      "1",     "10",   "5", "3", user_timeout.c_str(), s.libpq_uri.c_str(), timeout.c_str(),
      "midas", nullptr};
  PgConnPtr conn{PQconnectdbParams(keys, values, /*expand_dbname=*/1)};
  if (!conn) return std::make_error_code(std::errc::not_enough_memory);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn.get());
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    log_connect_failure(s.options.log, why);
    return errc::backend_unavailable;
  }
  const std::string setup =
      "SET statement_timeout = " + std::to_string(s.options.statement_timeout.count()) +
      "; SET client_min_messages = warning; SET plan_cache_mode = force_custom_plan" +
      std::string{session};
  if (!exec(conn.get(), setup, Params{}, false, io_of(s.options))) {
    return errc::backend_unavailable;
  }
  return conn;
}

// A few connections shared by the queue's callers. A connection that failed is dropped.
class Pool {
 public:
  /// `session`: more settings for each connection ("; SET ...").
  explicit Pool(Settings settings, std::string session = {})
      : settings_{std::move(settings)}, session_{std::move(session)} {}

  // A connection and the statements prepared on it.
  struct Pooled {
    PgConnPtr conn;
    std::uint32_t prepared = 0;
  };

  class Handle {
   public:
    Handle(Pool& pool, Pooled conn) : pool_{&pool}, conn_{std::move(conn)} {}
    Handle(Handle&& other) noexcept
        : pool_{std::exchange(other.pool_, nullptr)}, conn_{std::move(other.conn_)} {}
    Handle& operator=(Handle&&) = delete;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() {
      if (pool_ != nullptr) pool_->release(std::move(conn_));
    }
    [[nodiscard]] PGconn* get() const noexcept { return conn_.conn.get(); }
    [[nodiscard]] Conn conn() noexcept { return Conn{conn_.conn.get(), &conn_.prepared}; }

   private:
    Pool* pool_;
    Pooled conn_;
  };

  result<Handle> acquire() {
    std::unique_lock lock{mutex_};
    available_.wait(lock, [&] { return !idle_.empty() || open_ < settings_.options.pool_size; });
    if (!idle_.empty()) {
      Pooled c = std::move(idle_.back());
      idle_.pop_back();
      return Handle{*this, std::move(c)};
    }
    ++open_;
    lock.unlock();
    auto c = open_connection(settings_, session_);
    if (!c) {
      lock.lock();
      --open_;
      available_.notify_one();
      return c.error();
    }
    return Handle{*this, Pooled{std::move(c).value()}};
  }

  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

 private:
  void release(Pooled conn) {
    std::lock_guard lock{mutex_};
    if (conn.conn && PQstatus(conn.conn.get()) == CONNECTION_OK &&
        PQtransactionStatus(conn.conn.get()) == PQTRANS_IDLE) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;  // broken or left mid-transaction: drop it, the next acquire opens a new one
    }
    available_.notify_one();
  }

  Settings settings_;
  std::string session_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Pooled> idle_;
  int open_ = 0;
};

class PostgresQueue final : public Queue {
 public:
  PostgresQueue(const PostgresQueue&) = delete;
  PostgresQueue& operator=(const PostgresQueue&) = delete;
  ~PostgresQueue() override {
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  PostgresQueue(Settings settings, const Clock& clock)
      : clock_{clock},
        pool_{settings},
        relaxed_pool_{relaxed(std::move(settings)), std::string{relaxed_session}},
        schema_{pool_.settings().options.schema},
        io_{io_of(pool_.settings().options)} {
    const auto S = [&](std::string_view sql) { return with_schema(sql, schema_); };
    const auto P = [&](int slot, std::string_view sql) { return Statement{S(sql), slot}; };
    const std::string cols{task_columns};
    enqueue_ = P(0, enqueue_sql);
    // The sequence is looked up once (OFFSET 0 keeps the sub-select from being flattened into a
    // per-row look-up): 1000 ids in 0.6-0.9 ms instead of 3.5-6 ms. copy_enqueue appends the
    // count and ")".
    next_ids_ = S(R"sql(SELECT nextval(s.seq)
FROM (SELECT pg_get_serial_sequence('@S.midas_tasks', 'id')::regclass AS seq OFFSET 0) s,
  generate_series(1, )sql");
    notify_channel_.append("\"midas:").append(schema_).append(1, '"');
    copy_ =
        S("COPY @S.midas_tasks (id, type, queue, params, status, max_attempts, priority, run_at, "
          "created_at, updated_at) FROM STDIN WITH (FORMAT binary)");
    // What both claim statements do with the rows their `due` CTE locked: lease them.
    const std::string lease_due = R"sql(
UPDATE @S.midas_tasks t SET status = 'running', attempt = t.attempt + 1, lease_owner = $4,
  lease_token = $5 || t.id::text, lease_expires_at = )sql" MIDAS_TS("$6") R"sql(,
  updated_at = )sql" MIDAS_TS("$2") R"sql(
FROM due WHERE t.id = due.id
RETURNING )sql" + cols;
    // Scanned in claim-index order (queue, priority, run_at, id): the due tasks of the first
    // priority come first, so a queue with a backlog fills the limit at once. When fewer tasks
    // are due than asked for, though, the scan goes on through every task scheduled for later
    // (run_at <= now only filters, with no condition on priority before it): 4-9 ms a claim
    // with 100000 of them, against 0.3-0.5 ms. claim_sparse_ serves that case.
    claim_ = P(2, R"sql(
WITH due AS (
  SELECT id FROM @S.midas_tasks
  WHERE queue = $1 AND status IN ('pending', 'retrying') AND run_at <= )sql" MIDAS_TS("$2") R"sql(
  ORDER BY priority, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
)
)sql" + lease_due);
    // The same claim for a queue with many tasks scheduled for later (see ClaimMode): it visits
    // the distinct priorities of the waiting tasks in ascending order (one index probe each) and,
    // within each, only the due tasks (run_at <= now bounds the scan once priority is fixed),
    // locking them as it goes, past rows other claimers hold, until it has $3. The nested loop
    // yields (priority, run_at, id) order and stops at the limit, so no other row is locked; the
    // lock re-checks every condition, due included, on the row's latest version. 0.5-0.8 ms a
    // claim against 4-9 ms with 100000 tasks scheduled for later; against 0.3-0.5 ms without
    // them (it takes longer to plan), which is why claim_ stays the default.
    claim_sparse_ = P(14, R"sql(
WITH RECURSIVE prios AS (
  (SELECT priority FROM @S.midas_tasks
   WHERE queue = $1 AND status IN ('pending', 'retrying') ORDER BY priority LIMIT 1)
  UNION ALL
  SELECT (SELECT w.priority FROM @S.midas_tasks w
          WHERE w.queue = $1 AND w.status IN ('pending', 'retrying') AND w.priority > p.priority
          ORDER BY w.priority LIMIT 1)
  FROM prios p WHERE p.priority IS NOT NULL
),
due AS (
  SELECT c.id FROM prios p CROSS JOIN LATERAL (
    SELECT w.id FROM @S.midas_tasks w
    WHERE w.queue = $1 AND w.status IN ('pending', 'retrying') AND w.priority = p.priority
      AND w.run_at <= )sql" MIDAS_TS("$2") R"sql(
    ORDER BY w.run_at, w.id LIMIT $3 FOR UPDATE SKIP LOCKED) c
  WHERE p.priority IS NOT NULL
  LIMIT $3
)
)sql" + lease_due);
    heartbeat_ = P(3, R"sql(
UPDATE @S.midas_tasks t SET lease_expires_at = )sql" MIDAS_TS("$3") ", updated_at = " MIDAS_TS(
                          "$2") R"sql(
FROM jsonb_to_recordset($1::jsonb) AS l(id bigint, token text)
WHERE t.id = l.id AND t.lease_token = l.token AND t.status = 'running'
RETURNING t.id::text)sql");
    const std::string settle = R"sql(
UPDATE @S.midas_tasks SET status = $3,
  run_at = CASE WHEN $3 = 'retrying' THEN )sql" MIDAS_TS("$4") R"sql( ELSE run_at END,
  attempt = attempt - $5::int,
  history = history || jsonb_build_array($6::jsonb),
  finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN )sql" MIDAS_TS(
        "$7") R"sql( END,
  lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
  updated_at = )sql" MIDAS_TS("$7") R"sql(
WHERE id = $1 AND lease_token = $2 AND status = 'running')sql";
    settle_ = P(4, settle + " RETURNING id");
    settle_batch_ = P(5, R"sql(
UPDATE @S.midas_tasks t SET status = i.status,
  run_at = CASE WHEN i.status = 'retrying' THEN )sql" MIDAS_TS("i.run_at") R"sql( ELSE t.run_at END,
  attempt = t.attempt - i.given_back,
  history = t.history || jsonb_build_array(i.record),
  finished_at = CASE WHEN i.status IN ('succeeded', 'failed', 'cancelled') THEN )sql" MIDAS_TS(
                             "$2") R"sql( END,
  lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
  updated_at = )sql" MIDAS_TS("$2") R"sql(
FROM jsonb_to_recordset($1::jsonb)
  AS i(id bigint, token text, status text, run_at bigint, given_back int, record jsonb)
WHERE t.id = i.id AND t.lease_token = i.token AND t.status = 'running'
RETURNING t.id::text)sql");
    rescue_ = P(6, settle + " AND lease_expires_at < " MIDAS_TS("$7") " RETURNING id");
    checkpoint_ = P(7, R"sql(
UPDATE @S.midas_tasks SET checkpoint = $3::jsonb, updated_at = )sql" MIDAS_TS("$4") R"sql(
WHERE id = $1 AND lease_token = $2 AND status = 'running' RETURNING id)sql");
    expired_ = P(8, "SELECT " + cols + R"sql( FROM @S.midas_tasks t
WHERE t.status = 'running' AND t.lease_expires_at < )sql" MIDAS_TS("$1") R"sql(
  AND t.queue = ANY($2::text[])
ORDER BY t.lease_expires_at LIMIT $3)sql");
    get_ = P(9, "SELECT " + cols + " FROM @S.midas_tasks t WHERE t.id = $1");
    list_ = S("SELECT " + cols + R"sql( FROM @S.midas_tasks t
WHERE ($1::text IS NULL OR t.queue = $1) AND ($2::text IS NULL OR t.status = $2)
  AND ($3::text IS NULL OR t.type = $3)
ORDER BY t.id DESC LIMIT $4 OFFSET $5)sql");
    // A queue's tasks of every status: waiting ones through the claim index, the others through
    // the listing index (neither partial index holds them all), newest first.
    const std::string newest_of_queue = R"sql(
  (SELECT t.* FROM @S.midas_tasks t WHERE t.queue = $1 AND ($3::text IS NULL OR t.type = $3)
     AND t.status IN ('pending', 'retrying') ORDER BY t.id DESC LIMIT $4::bigint + $5::bigint)
  UNION ALL
  (SELECT t.* FROM @S.midas_tasks t WHERE t.queue = $1 AND ($3::text IS NULL OR t.type = $3)
     AND t.status NOT IN ('pending', 'retrying') ORDER BY t.id DESC LIMIT $4::bigint + $5::bigint))sql";
    list_queue_ = S("SELECT " + cols + " FROM (" + newest_of_queue +
                    ") t WHERE $2::text IS NULL ORDER BY t.id DESC LIMIT $4 OFFSET $5");
    cancel_ = P(10, R"sql(
UPDATE @S.midas_tasks SET status = 'cancelled', finished_at = )sql" MIDAS_TS("$2") R"sql(,
  updated_at = )sql" MIDAS_TS("$2") R"sql(
WHERE id = $1 AND status IN ('pending', 'retrying') RETURNING id)sql");
    requeue_ = P(11, R"sql(
UPDATE @S.midas_tasks SET status = 'pending', attempt = 0, run_at = )sql" MIDAS_TS("$2") R"sql(,
  finished_at = NULL, updated_at = )sql" MIDAS_TS("$2") R"sql(
WHERE id = $1 AND status IN ('failed', 'cancelled') RETURNING id)sql");
    status_ = P(12, "SELECT status FROM @S.midas_tasks WHERE id = $1");
    prune_ = P(13, R"sql(
WITH victims AS (
  SELECT id FROM @S.midas_tasks
  WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < )sql" MIDAS_TS("$1") R"sql(
  ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED
)
DELETE FROM @S.midas_tasks t USING victims WHERE t.id = victims.id)sql");
    // Counts per queue and status, and the age of the oldest due task, in ms.
    const std::string counts = R"sql(
SELECT queue, status, count(*)::bigint,
  max(CASE WHEN status IN ('pending', 'retrying') AND run_at <= )sql" MIDAS_TS("$1") R"sql(
      THEN (extract(epoch from )sql" MIDAS_TS("$1") R"sql( - run_at) * 1000)::bigint END)
)sql";
    stats_ = S(counts + R"sql(FROM @S.midas_tasks WHERE ($2::text IS NULL OR queue = $2)
GROUP BY queue, status ORDER BY queue)sql");
    // One queue: its waiting tasks through the claim index, the others through the listing one.
    stats_queue_ = S(counts + R"sql(FROM (
  SELECT queue, status, run_at FROM @S.midas_tasks
  WHERE queue = $2 AND status IN ('pending', 'retrying')
  UNION ALL
  SELECT queue, status, NULL FROM @S.midas_tasks
  WHERE queue = $2 AND status NOT IN ('pending', 'retrying')
) t
GROUP BY queue, status ORDER BY queue)sql");
  }

  // Connects, migrates if asked, and reads the server's durability settings.
  result<void> open() {
    MIDAS_TRY(conn, pool_.acquire());
    if (pool_.settings().options.migrate) MIDAS_TRYV(migrate_on(conn.get()));
    for (const char* setting : {"fsync", "synchronous_commit"}) {
      MIDAS_TRY(r, exec(conn.get(), std::string{"SHOW "} + setting, Params{}, false, io()));
      if (PQntuples(r.get()) == 1 && std::string_view{PQgetvalue(r.get(), 0, 0)} == "off") {
        std::string warning = std::string{"postgres "} + setting +
                              " is off: a task whose enqueue returned success can be lost when "
                              "the server crashes; turn it on for durability";
        if (log()) log()(LogLevel::warning, warning);
        warnings_.push_back(std::move(warning));
      }
    }
    return success();
  }

  result<void> migrate() override {
    MIDAS_TRY(conn, pool_.acquire());
    return migrate_on(conn.get());
  }

  result<Enqueued> enqueue(const TaskSpec& spec) override {
    MIDAS_TRY(out, enqueue_batch(std::span<const TaskSpec>{&spec, 1}));
    return out.front();
  }

  result<std::vector<Enqueued>> enqueue_batch(std::span<const TaskSpec> specs) override {
    if (specs.empty()) return std::vector<Enqueued>{};
    MIDAS_TRY(conn, pool_.acquire());
    const bool unique = std::any_of(specs.begin(), specs.end(),
                                    [](const TaskSpec& s) { return s.unique_key.has_value(); });
    const TimePoint now = clock_.now();
    auto out = [&]() -> result<std::vector<Enqueued>> {
      if (unique || specs.size() < copy_threshold) {
        return run_enqueue(conn.conn(), enqueue_, specs, now, io());
      }
      // Unique keys need ON CONFLICT; without them a batch goes through COPY.
      for (const auto& spec : specs) {
        MIDAS_TRYV(validate(spec));
      }
      return copy_enqueue(conn.conn().pg, next_ids_, copy_, notify_channel_, specs, now, io());
    }();
    if (out) announce(specs, out.value(), now);
    return out;
  }

  // Batches at least this large (and without unique keys) are enqueued with COPY.
  static constexpr std::size_t copy_threshold = 16;

  result<std::vector<ClaimedTask>> claim(const ClaimRequest& request) override {
    if (request.lease.count() <= 0) return errc::invalid_argument;
    for (const auto& q : request.queues) {
      if (!is_valid_name(q)) return errc::invalid_argument;
    }
    std::vector<ClaimedTask> out;
    if (request.limit == 0 || request.queues.empty()) return out;
    MIDAS_TRY(conn, relaxed_pool_.acquire());
    const std::string token_prefix = detail::random_token() + ":";
    for (const auto& queue : request.queues) {
      const TimePoint now = clock_.now();
      const TimePoint deadline = now + request.lease;
      const std::size_t asked = request.limit - out.size();
      Params p;
      p.add(queue).add(now).add(static_cast<std::int64_t>(asked));
      p.add(request.worker_id).add(token_prefix).add(deadline);
      const bool sparse = use_sparse_claim(queue);
      const auto started = std::chrono::steady_clock::now();
      MIDAS_TRY(r, exec(conn.conn(), sparse ? claim_sparse_ : claim_, p, false, io()));
      claimed_from(queue, sparse, static_cast<std::size_t>(PQntuples(r.get())) < asked,
                   std::chrono::steady_clock::now() - started);
      std::vector<ClaimedTask> batch;
      for (int row = 0; row < PQntuples(r.get()); ++row) {
        MIDAS_TRY(task, task_from_row(r.get(), row));
        Lease lease{task.id, PQgetvalue(r.get(), row, 14), request.worker_id, deadline};
        batch.push_back(ClaimedTask{std::move(task), std::move(lease)});
      }
      std::sort(batch.begin(), batch.end(), [](const ClaimedTask& a, const ClaimedTask& b) {
        return std::tuple{a.task.priority, a.task.run_at, std::stoll(a.task.id)} <
               std::tuple{b.task.priority, b.task.run_at, std::stoll(b.task.id)};
      });
      for (auto& c : batch) out.push_back(std::move(c));
      if (out.size() >= request.limit) break;
    }
    return out;
  }

  result<std::vector<TaskId>> heartbeat(std::span<const Lease> leases, Duration lease) override {
    std::vector<TaskId> lost;
    json rows = json::array();
    for (const auto& l : leases) {
      auto id = parse_int(l.id);
      if (!id) {
        lost.push_back(l.id);
        continue;
      }
      rows.push_back({{"id", *id}, {"token", l.token}});
    }
    if (rows.empty()) return lost;
    MIDAS_TRY(conn, relaxed_pool_.acquire());
    const TimePoint now = clock_.now();
    Params p;
    p.add(rows.dump()).add(now).add(now + lease);
    MIDAS_TRY(r, exec(conn.conn(), heartbeat_, p, false, io()));
    std::set<std::string> kept;
    for (int row = 0; row < PQntuples(r.get()); ++row) kept.insert(PQgetvalue(r.get(), row, 0));
    for (const auto& l : leases) {
      if (parse_int(l.id) && !kept.contains(l.id)) lost.push_back(l.id);
    }
    return lost;
  }

  result<void> settle(const Lease& lease, const Settlement& s) override {
    return transition(settle_, lease, s);
  }

  result<std::vector<std::error_code>> settle_batch(
      std::span<const std::pair<Lease, Settlement>> items) override {
    std::vector<std::error_code> out(items.size());
    json rows = json::array();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& [lease, s] = items[i];
      auto id = parse_int(lease.id);
      if (!id) {
        out[i] = errc::lease_lost;
        continue;
      }
      if (!is_settled_status(s.status)) {
        out[i] = errc::invalid_argument;
        continue;
      }
      rows.push_back({{"id", *id},
                      {"token", lease.token},
                      {"status", to_string(s.status)},
                      {"run_at", to_us(s.run_at)},
                      {"given_back", s.counts_attempt ? 0 : 1},
                      {"record", s.record}});
    }
    if (rows.empty()) return out;
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(rows.dump(-1, ' ', false, json::error_handler_t::replace)).add(clock_.now());
    MIDAS_TRY(r, exec(conn.conn(), settle_batch_, p, /*acknowledging=*/true, io()));
    std::set<std::string> recorded;
    for (int row = 0; row < PQntuples(r.get()); ++row) recorded.insert(PQgetvalue(r.get(), row, 0));
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!out[i] && !recorded.contains(items[i].first.id)) out[i] = errc::lease_lost;
    }
    return out;
  }

  result<void> rescue(const Lease& lease, const Settlement& s) override {
    return transition(rescue_, lease, s);
  }

  result<void> checkpoint(const Lease& lease, const json& progress) override {
    auto id = parse_int(lease.id);
    if (!id) return errc::lease_lost;
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(*id).add(lease.token).add(progress.dump(-1, ' ', false, json::error_handler_t::replace));
    p.add(clock_.now());
    MIDAS_TRY(r, exec(conn.conn(), checkpoint_, p, true, io()));
    if (PQntuples(r.get()) != 1) return errc::lease_lost;
    return success();
  }

  result<std::vector<ClaimedTask>> expired(std::span<const std::string> queues,
                                           std::size_t limit) override {
    MIDAS_TRY(names, name_array(queues));
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(clock_.now()).add(names).add(static_cast<std::int64_t>(limit));
    MIDAS_TRY(r, exec(conn.conn(), expired_, p, false, io()));
    std::vector<ClaimedTask> out;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      MIDAS_TRY(task, task_from_row(r.get(), row));
      const char* token = cell_text(r.get(), row, 14);
      Lease lease{task.id, token ? token : "", task.lease_owner.value_or(""),
                  task.lease_expires_at.value_or(TimePoint{})};
      out.push_back(ClaimedTask{std::move(task), std::move(lease)});
    }
    return out;
  }

  result<bool> wait_for_tasks(std::span<const std::string> queues, Duration max_wait) override;

  result<Task> get(const TaskId& id) override {
    auto n = parse_int(id);
    if (!n) return errc::task_not_found;
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(*n);
    MIDAS_TRY(r, exec(conn.conn(), get_, p, false, io()));
    if (PQntuples(r.get()) != 1) return errc::task_not_found;
    return task_from_row(r.get(), 0);
  }

  result<std::vector<Task>> list(const ListFilter& filter) override {
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(filter.queue);
    p.add(filter.status ? std::optional<std::string>{std::string{to_string(*filter.status)}}
                        : std::nullopt);
    p.add(filter.type);
    p.add(static_cast<std::int64_t>(std::min<std::size_t>(filter.limit, 1'000'000)));
    p.add(static_cast<std::int64_t>(std::min<std::size_t>(filter.offset, 1'000'000'000)));
    const bool whole_queue = filter.queue && !filter.status;
    MIDAS_TRY(r, exec(conn.get(), whole_queue ? list_queue_ : list_, p, false, io()));
    std::vector<Task> out;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      MIDAS_TRY(task, task_from_row(r.get(), row));
      out.push_back(std::move(task));
    }
    return out;
  }

  result<void> cancel(const TaskId& id) override {
    return operator_transition(cancel_, id, TaskStatus::cancelled);
  }

  result<void> requeue(const TaskId& id) override {
    return operator_transition(requeue_, id, std::nullopt);
  }

  result<std::size_t> prune(TimePoint cutoff, std::size_t limit) override {
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(cutoff).add(static_cast<std::int64_t>(limit));
    MIDAS_TRY(r, exec(conn.conn(), prune_, p, false, io()));
    auto n = parse_int(PQcmdTuples(r.get()));
    return static_cast<std::size_t>(n.value_or(0));
  }

  result<Stats> stats(const std::optional<std::string>& queue) override {
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(clock_.now()).add(queue);
    MIDAS_TRY(r, exec(conn.get(), queue ? stats_queue_ : stats_, p, false, io()));
    Stats out;
    for (int row = 0; row < PQntuples(r.get()); ++row) {
      std::string name = PQgetvalue(r.get(), row, 0);
      if (out.queues.empty() || out.queues.back().queue != name) {
        out.queues.push_back(QueueStats{});
        out.queues.back().queue = name;
      }
      QueueStats& s = out.queues.back();
      auto status = parse_task_status(PQgetvalue(r.get(), row, 1));
      if (!status) return errc::protocol_error;
      auto count = static_cast<std::size_t>(parse_int(PQgetvalue(r.get(), row, 2)).value_or(0));
      switch (status.value()) {
        case TaskStatus::pending:
          s.pending = count;
          break;
        case TaskStatus::running:
          s.running = count;
          break;
        case TaskStatus::retrying:
          s.retrying = count;
          break;
        case TaskStatus::succeeded:
          s.succeeded = count;
          break;
        case TaskStatus::failed:
          s.failed = count;
          break;
        case TaskStatus::cancelled:
          s.cancelled = count;
          break;
      }
      if (const char* age = cell_text(r.get(), row, 3)) {
        Duration d{parse_int(age).value_or(0)};
        if (!s.oldest_due_age || d > *s.oldest_due_age) s.oldest_due_age = d;
      }
    }
    out.durability_warnings = warnings_;
    return out;
  }

  [[nodiscard]] const Clock& clock() const noexcept override { return clock_; }

 private:
  [[nodiscard]] const LogSink& log() const noexcept { return pool_.settings().options.log; }
  [[nodiscard]] const Io& io() const noexcept { return io_; }

  result<void> transition(const Statement& sql, const Lease& lease, const Settlement& s) {
    if (!is_settled_status(s.status)) return errc::invalid_argument;
    auto id = parse_int(lease.id);
    if (!id) return errc::lease_lost;
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(*id).add(lease.token).add(std::string{to_string(s.status)}).add(s.run_at);
    p.add(s.counts_attempt ? 0 : 1);
    p.add(detail::dump_record(s.record));
    p.add(clock_.now());
    MIDAS_TRY(r, exec(conn.conn(), sql, p, /*acknowledging=*/true, io()));
    if (PQntuples(r.get()) != 1) return errc::lease_lost;
    return success();
  }

  // cancel / requeue: the UPDATE, and when it matched nothing, why.
  result<void> operator_transition(const Statement& sql, const TaskId& id,
                                   std::optional<TaskStatus> already_done) {
    auto n = parse_int(id);
    if (!n) return errc::task_not_found;
    MIDAS_TRY(conn, pool_.acquire());
    Params p;
    p.add(*n).add(clock_.now());
    MIDAS_TRY(r, exec(conn.conn(), sql, p, false, io()));
    if (PQntuples(r.get()) == 1) return success();
    Params q;
    q.add(*n);
    MIDAS_TRY(s, exec(conn.conn(), status_, q, false, io()));
    if (PQntuples(s.get()) != 1) return errc::task_not_found;
    if (already_done && parse_task_status(PQgetvalue(s.get(), 0, 0)).value() == *already_done) {
      return success();
    }
    return errc::invalid_state;
  }

  result<void> migrate_on(PGconn* conn) {
    const std::string lock_key = "hashtext('midas:migrate:" + schema_ + "')";
    MIDAS_TRYV(exec(conn, "SELECT pg_advisory_lock(" + lock_key + ")", Params{}, false, io()));
    auto applied = migrate_locked(conn);
    auto unlocked =
        exec(conn, "SELECT pg_advisory_unlock(" + lock_key + ")", Params{}, false, io());
    MIDAS_TRYV(applied);
    MIDAS_TRYV(unlocked);
    return success();
  }

  result<void> migrate_locked(PGconn* conn) {
    const auto S = [&](std::string_view sql) { return with_schema(sql, schema_); };
    MIDAS_TRYV(exec(conn, S(R"sql(
CREATE SCHEMA IF NOT EXISTS @S;
CREATE TABLE IF NOT EXISTS @S.midas_schema_version (
  version integer PRIMARY KEY, description text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()))sql"),
                    Params{}, false, io()));
    MIDAS_TRY(r, exec(conn, S("SELECT coalesce(max(version), 0) FROM @S.midas_schema_version"),
                      Params{}, false, io()));
    const auto current = parse_int(PQgetvalue(r.get(), 0, 0)).value_or(0);
    for (const auto& m : detail::migrations) {
      if (m.version <= current) continue;
      Params p;
      p.add(m.version).add(std::string{m.description});
      // A migration may build an index over a big table: the server's statement timeout is off
      // for it (SET LOCAL: this transaction only), and its reply may take up to an hour.
      MIDAS_TRYV(exec(conn, "BEGIN; SET LOCAL statement_timeout = 0", Params{}, false, io()));
      Io slow = io();
      slow.reply_timeout = std::max(slow.reply_timeout, Duration{std::chrono::hours{1}});
      auto step = exec(conn, S(m.sql), Params{}, false, slow);
      if (step) {
        step = exec(conn,
                    S("INSERT INTO @S.midas_schema_version (version, description) VALUES ($1, $2)"),
                    p, false, io());
      }
      if (!step) {
        (void)exec(conn, "ROLLBACK", Params{}, false, io());
        return step.error();
      }
      MIDAS_TRYV(exec(conn, "COMMIT", Params{}, false, io()));
      if (log()) {
        log()(LogLevel::info, "postgres: schema " + schema_ + " migrated to version " +
                                  std::to_string(m.version) + " (" + std::string{m.description} +
                                  ")");
      }
    }
    return success();
  }

  // ---- wake-ups: one LISTEN connection, pumped by one waiter at a time -----------------------

  // Tells this process's waiters at once about tasks it enqueued that are due, instead of when
  // the server's notification comes back (0.3 ms or more later): a worker sharing the queue
  // object with its producer starts sooner. Other processes still hear the NOTIFY; here it
  // counts as a second wake-up, which costs at most one claim that finds nothing.
  void announce(std::span<const TaskSpec> specs, const std::vector<Enqueued>& out, TimePoint now) {
    bool any = false;
    {
      std::lock_guard lock{listen_mutex_};
      for (std::size_t i = 0; i < specs.size() && i < out.size(); ++i) {
        const TaskSpec& s = specs[i];
        if (out[i].duplicate || s.run_at.value_or(now + s.delay) > now) continue;
        ++heard_[s.queue];
        any = true;
      }
      if (!any || waiting_ == 0) return;
    }
    listen_changed_.notify_all();
    if (wake_fd_ >= 0) {
      const std::uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);  // ends the pumping thread's poll
    }
  }

  result<bool> pump(std::span<const std::string> queues, Duration max_wait,
                    std::vector<std::string>& heard);

  // Claims and heartbeats run on connections of their own whose commits do not wait for the WAL
  // flush: losing one in a server crash loses no task (a lost claim leaves the task claimable,
  // so it runs again — at-least-once — and the first worker's ack is fenced out; a lost
  // heartbeat only shortens a lease). Session settings make each one statement, one round trip.
  // enable_sort off: with stale statistics on a new queue the planner sorted every queued row
  // through the listing index (15.7 ms a claim instead of 0.7 ms on 20000 tasks).
  // jit off: with sorts disabled, a plan that still needs one is costed past jit_above_cost;
  // a claim statement that sorted a few rows ran in 170 ms with JIT on, 0.3 ms with it off.
  static constexpr std::string_view relaxed_session =
      "; SET synchronous_commit = off; SET enable_sort = off; SET jit = off";
  static Settings relaxed(Settings s) {
    s.options.pool_size = std::min(s.options.pool_size, 2);
    return s;
  }

  // Which claim statement a queue gets. claim_ scans the claim index in order: right for a
  // queue with a backlog, and for one with few waiting tasks (0.4 ms), but when fewer tasks are
  // due than asked for it also walks every task scheduled for later (4-9 ms with 100000 of
  // them). claim_sparse_ visits only due tasks but takes longer to plan on every call,
  // so it is used only where short plain claims were slow (PostgresOptions::slow_claim): until
  // a claim comes back full (a backlog) or, after 10 s, a plain claim is tried again to see
  // whether the walk is gone.
  struct ClaimMode {
    bool sparse = false;
    int slow_short = 0;  // plain claims in a row that came up short and slow
    std::chrono::steady_clock::time_point since{};
  };
  static constexpr std::chrono::seconds sparse_recheck{10};

  bool use_sparse_claim(const std::string& queue) {
    std::lock_guard lock{claim_modes_mutex_};
    auto it = claim_modes_.find(queue);
    if (it == claim_modes_.end() || !it->second.sparse) return false;
    return std::chrono::steady_clock::now() - it->second.since < sparse_recheck;
  }
  // Three slow short claims in a row, not one: a connection's first claim is slow anyway (it
  // prepares the statement), and on a busy host any claim can be.
  void claimed_from(const std::string& queue, bool sparse, bool came_up_short,
                    std::chrono::steady_clock::duration took) {
    const Duration slow = pool_.settings().options.slow_claim;
    bool switched = false;
    {
      std::lock_guard lock{claim_modes_mutex_};
      ClaimMode& mode = claim_modes_[queue];
      if (!came_up_short) {
        mode = ClaimMode{};
      } else if (!sparse) {
        mode.slow_short = took > slow ? mode.slow_short + 1 : 0;
        switched = mode.slow_short >= (slow.count() == 0 ? 1 : 3);
        mode.sparse = switched;
        if (switched) mode = ClaimMode{true, 0, std::chrono::steady_clock::now()};
      }
    }
    if (switched && log()) {
      log()(LogLevel::debug, "postgres: queue " + queue +
                                 ": claims visit only due tasks for a while (short claims took "
                                 "over " +
                                 std::to_string(slow.count()) +
                                 " ms: many tasks scheduled for later?)");
    }
  }

  const Clock& clock_;
  Pool pool_;
  Pool relaxed_pool_;  // claims and heartbeats
  std::string schema_;
  Io io_;
  std::vector<std::string> warnings_;
  Statement enqueue_, claim_, claim_sparse_, heartbeat_, settle_, settle_batch_, rescue_,
      checkpoint_, expired_, get_, cancel_, requeue_, status_, prune_;
  std::string next_ids_, copy_, list_, list_queue_, stats_, stats_queue_;  // COPY; rare
  std::string notify_channel_;  // "midas:<schema>", quoted as an identifier for NOTIFY

  std::mutex claim_modes_mutex_;
  std::map<std::string, ClaimMode, std::less<>> claim_modes_;

  std::mutex listen_mutex_;
  std::condition_variable listen_changed_;
  bool pumping_ = false;
  std::uint64_t generation_ = 0;  // bumped on reconnect: notifications may have been missed
  std::map<std::string, std::uint64_t, std::less<>> heard_;  // notifications per queue
  int waiting_ = 0;                                          // threads in wait_for_tasks
  int wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);   // announce() ends the pump's poll
  PgConnPtr listener_;                                       // only touched by the pumping thread
};

result<bool> PostgresQueue::pump(std::span<const std::string> queues, Duration max_wait,
                                 std::vector<std::string>& heard) {
  (void)queues;
  bool reconnected = false;
  if (!listener_ || PQstatus(listener_.get()) != CONNECTION_OK) {
    listener_.reset();
    MIDAS_TRY(conn, open_connection(pool_.settings()));
    MIDAS_TRYV(exec(conn.get(), "LISTEN " + notify_channel_, Params{}, false, io()));
    listener_ = std::move(conn);
    reconnected = true;
  }
  PGconn* c = listener_.get();
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(c)) {
      heard.emplace_back(n->extra);
      PQfreemem(n);
    }
  };
  if (PQconsumeInput(c) == 0) {
    listener_.reset();
    return errc::backend_unavailable;
  }
  drain();
  if (heard.empty() && !reconnected) {
    pollfd fds[2] = {{PQsocket(c), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int rc = ::poll(fds, wake_fd_ >= 0 ? 2 : 1,
                    static_cast<int>(std::max<Duration::rep>(0, max_wait.count())));
    if (rc < 0 && errno != EINTR) return errc::backend_unavailable;
    if (rc > 0 && (fds[1].revents & POLLIN) != 0) {
      std::uint64_t count = 0;
      (void)!::read(wake_fd_, &count, sizeof count);
    }
    if (rc > 0 && (fds[0].revents & POLLIN) != 0) {
      if (PQconsumeInput(c) == 0) {
        listener_.reset();
        return errc::backend_unavailable;
      }
      drain();
    }
  }
  return reconnected;
}

result<bool> PostgresQueue::wait_for_tasks(std::span<const std::string> queues, Duration max_wait) {
  const auto deadline = std::chrono::steady_clock::now() + max_wait;
  std::unique_lock lock{listen_mutex_};
  auto seen = [&] {
    std::uint64_t sum = generation_;
    for (const auto& q : queues) {
      if (auto it = heard_.find(q); it != heard_.end()) sum += it->second;
    }
    return sum;
  };
  const std::uint64_t start = seen();
  ++waiting_;
  struct Leave {
    int& n;
    ~Leave() { --n; }
  } leave{waiting_};  // destroyed while `lock` still holds the mutex (declared after it)
  for (;;) {
    if (seen() != start) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    if (pumping_) {
      listen_changed_.wait_until(lock, deadline);
      continue;
    }
    pumping_ = true;
    lock.unlock();
    std::vector<std::string> heard;
    auto r = pump(queues, std::chrono::duration_cast<Duration>(deadline - now), heard);
    lock.lock();
    pumping_ = false;
    for (auto& q : heard) ++heard_[q];
    if (r && r.value()) ++generation_;
    listen_changed_.notify_all();
    if (!r) return r.error();
  }
}

}  // namespace

result<std::unique_ptr<Queue>> connect_postgres(std::string_view url, PostgresOptions options,
                                                ConnectOptions connect) {
  MIDAS_TRY(settings, parse_settings(url, std::move(options)));
  auto queue = std::make_unique<PostgresQueue>(
      std::move(settings), connect.clock ? *connect.clock : SystemClock::instance());
  MIDAS_TRYV(queue->open());
  return std::unique_ptr<Queue>{std::move(queue)};
}

result<std::vector<Enqueued>> enqueue_in_transaction(pg_conn* conn, std::span<const TaskSpec> specs,
                                                     std::string_view schema, const Clock& clock) {
  if (conn == nullptr || !is_valid_schema(schema)) return errc::invalid_argument;
  if (PQstatus(conn) != CONNECTION_OK) return errc::backend_unavailable;
  if (PQtransactionStatus(conn) != PQTRANS_INTRANS) return errc::invalid_state;
  if (specs.empty()) return std::vector<Enqueued>{};
  return run_enqueue(Conn{conn, nullptr}, Statement{with_schema(enqueue_sql, schema), 0}, specs,
                     clock.now(), Io{});
}

result<Enqueued> enqueue_in_transaction(pg_conn* conn, const TaskSpec& spec,
                                        std::string_view schema, const Clock& clock) {
  MIDAS_TRY(out, enqueue_in_transaction(conn, std::span<const TaskSpec>{&spec, 1}, schema, clock));
  return out.front();
}

}  // namespace midas
