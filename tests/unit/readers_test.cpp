// SPDX-License-Identifier: MIT
// The backends' readers of what a server sends back (src/redis/replies.hpp, src/postgres/rows.hpp):
// a task comes back whole, or the read fails with protocol_error, whatever the server holds. The
// fuzz targets redis_reply and pg_row run the same readers on arbitrary bytes.
#include <doctest/doctest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "detail/record_json.hpp"
#include "postgres/rows.hpp"
#include "redis/replies.hpp"

namespace {

using midas::errc;

// ---- Redis ----

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The reply hiredis parses from `resp`, as if read off the socket.
ReplyPtr parse_resp(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  REQUIRE(redisReaderFeed(reader, resp.data(), resp.size()) == REDIS_OK);
  void* reply = nullptr;
  REQUIRE(redisReaderGetReply(reader, &reply) == REDIS_OK);
  redisReaderFree(reader);
  REQUIRE(reply != nullptr);
  return ReplyPtr{static_cast<redisReply*>(reply)};
}

// An HGETALL reply of `fields` (name, value, name, value...).
std::string hgetall(const std::vector<std::string>& fields) {
  std::string out = "*" + std::to_string(fields.size()) + "\r\n";
  for (const auto& f : fields) out += "$" + std::to_string(f.size()) + "\r\n" + f + "\r\n";
  return out;
}

std::vector<std::string> task_hash(const std::string& run_at = "1795000000000000",
                                   const std::string& attempt = "1") {
  return {"seq",
          "7",
          "type",
          "send-email",
          "queue",
          "mail",
          "params",
          R"({"to":1})",
          "status",
          "running",
          "attempt",
          attempt,
          "max_attempts",
          "25",
          "priority",
          "0",
          "run_at",
          run_at,
          "created_at",
          "1795000000000000",
          "updated_at",
          "1795000000000001",
          "token",
          "tok-7",
          "lease_owner",
          "w1",
          "lease_expires_at",
          "1795000008000000",
          "history",
          "[]"};
}

TEST_CASE("redis: a task hash reads back whole, with its lease token") {
  auto reply = parse_resp(hgetall(task_hash()));
  std::string token;
  auto t = midas::detail::parse_task(*reply, "mail", {}, &token);
  REQUIRE(t);
  CHECK(t.value().id == "mail/7");
  CHECK(t.value().type == "send-email");
  CHECK(t.value().params == nlohmann::json{{"to", 1}});
  CHECK(t.value().status == midas::TaskStatus::running);
  CHECK(t.value().attempt == 1);
  CHECK(t.value().lease_owner == std::optional<std::string>{"w1"});
  CHECK(token == "tok-7");
}

TEST_CASE("redis: a settled task's leftover lease fields are not reported") {
  // Settling leaves the last lease's fields in the hash (one write fewer per task).
  auto fields = task_hash();
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i] == "status") fields[i + 1] = "succeeded";
  }
  fields.insert(fields.end(), {"finished_at", "1795000002000000"});
  std::string token = "unchanged";
  auto t = midas::detail::parse_task(*parse_resp(hgetall(fields)), "mail", {}, &token);
  REQUIRE(t);
  CHECK(t.value().status == midas::TaskStatus::succeeded);
  CHECK_FALSE(t.value().lease_owner.has_value());
  CHECK_FALSE(t.value().lease_expires_at.has_value());
  CHECK(token.empty());
}

// The current layout: the lease is one field, lease = "<deadline> <token> <owner>".
std::vector<std::string> with_lease(std::vector<std::string> fields, const std::string& lease) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i] == "token" || fields[i] == "lease_owner" || fields[i] == "lease_expires_at" ||
        fields[i] == "history") {
      continue;
    }
    out.insert(out.end(), {fields[i], fields[i + 1]});
  }
  out.insert(out.end(), {"lease", lease});
  return out;
}

TEST_CASE("redis: a compact task hash takes seq and queue from where it was read") {
  // Since the compact layout, enqueue leaves seq, queue, updated_at and history out of the hash.
  auto fields = with_lease(task_hash(), "1795000008000000 tok-7 w1");
  std::vector<std::string> compact;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i] != "seq" && fields[i] != "queue" && fields[i] != "updated_at") {
      compact.insert(compact.end(), {fields[i], fields[i + 1]});
    }
  }
  auto t = midas::detail::parse_task(*parse_resp(hgetall(compact)), "jobs", "9");
  REQUIRE(t);
  CHECK(t.value().id == "jobs/9");
  CHECK(t.value().queue == "jobs");
  CHECK(t.value().updated_at == t.value().created_at);  // no change since the enqueue
  CHECK(t.value().history.empty());
  // Without a seq from the caller, the hash must carry one.
  CHECK(midas::detail::parse_task(*parse_resp(hgetall(compact)), "jobs").error() ==
        errc::protocol_error);
  // A settled task's updated_at is its finished_at, which settle writes alone.
  for (std::size_t i = 0; i + 1 < compact.size(); i += 2) {
    if (compact[i] == "status") compact[i + 1] = "succeeded";
  }
  compact.insert(compact.end(),
                 {"updated_at", "1795000001000000", "finished_at", "1795000002000000"});
  auto done = midas::detail::parse_task(*parse_resp(hgetall(compact)), "jobs", "9");
  REQUIRE(done);
  CHECK(done.value().updated_at == midas::TimePoint{std::chrono::microseconds{1795000002000000}});
  // Where the hash was read wins over the hash's own seq and queue, so that the id is one `get`
  // finds again; without it, an older hash's fields are read.
  auto full = midas::detail::parse_task(*parse_resp(hgetall(task_hash())), "jobs", "9");
  REQUIRE(full);
  CHECK(full.value().id == "jobs/9");
  CHECK(full.value().updated_at == midas::TimePoint{std::chrono::microseconds{1795000000000001}});
  auto older = midas::detail::parse_task(*parse_resp(hgetall(task_hash())), "", "");
  REQUIRE(older);
  CHECK(older.value().id == "mail/7");
}

TEST_CASE("redis: a lease in one field reads back as token, owner and deadline") {
  // The owner is last and may hold spaces; a task without history has none yet.
  std::string token;
  auto t = midas::detail::parse_task(
      *parse_resp(hgetall(with_lease(task_hash(), "1795000008000000 tok-7 worker 1"))), "mail", {},
      &token);
  REQUIRE(t);
  CHECK(token == "tok-7");
  CHECK(t.value().lease_owner == std::optional<std::string>{"worker 1"});
  REQUIRE(t.value().lease_expires_at.has_value());
  CHECK(*t.value().lease_expires_at ==
        midas::TimePoint{std::chrono::microseconds{1795000008000000}});
  CHECK(t.value().history.empty());
}

TEST_CASE("redis: while a first-layout token field exists, it is the lease") {
  // A worker of the first layout claimed the task after a newer one had: its fields win over the
  // lease field left behind.
  auto fields = task_hash();
  fields.insert(fields.end(), {"lease", "1795000001000000 stale-token newer"});
  std::string token;
  auto t = midas::detail::parse_task(*parse_resp(hgetall(fields)), "mail", {}, &token);
  REQUIRE(t);
  CHECK(token == "tok-7");
  CHECK(t.value().lease_owner == std::optional<std::string>{"w1"});
}

TEST_CASE("redis: a running task with a malformed lease field is protocol_error") {
  for (const char* lease : {"", "1795000008000000", "1795000008000000 tok", "x tok w"}) {
    CAPTURE(lease);
    CHECK(midas::detail::parse_task(*parse_resp(hgetall(with_lease(task_hash(), lease))), "mail")
              .error() == errc::protocol_error);
  }
}

TEST_CASE(
    "redis: a time or number out of range, a missing field or an odd array is "
    "protocol_error") {
  // 2^63-1 microseconds is far past what a nanosecond TimePoint holds: the conversion overflowed
  // before times were range-checked.
  for (const auto& fields : {task_hash("9223372036854775807"), task_hash("-9223372036854775808"),
                             task_hash("12x"), task_hash("1795000000000000", "99999999999")}) {
    auto reply = parse_resp(hgetall(fields));
    CHECK(midas::detail::parse_task(*reply, "mail").error() == errc::protocol_error);
  }
  auto missing = task_hash();
  missing.erase(missing.begin(), missing.begin() + 2);  // no "seq"
  CHECK(midas::detail::parse_task(*parse_resp(hgetall(missing)), "mail").error() ==
        errc::protocol_error);
  CHECK(midas::detail::parse_task(*parse_resp("*1\r\n$1\r\na\r\n"), "mail").error() ==
        errc::protocol_error);
  CHECK(midas::detail::parse_task(*parse_resp(":5\r\n"), "mail").error() == errc::protocol_error);
  CHECK(midas::detail::parse_task(*parse_resp("*0\r\n"), "mail").error() == errc::task_not_found);
}

// The claim script joins a task's HGETALL array into one string, elements separated by byte 31.
std::string joined(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += midas::detail::field_separator;
    out += fields[i];
  }
  return "$" + std::to_string(out.size()) + "\r\n" + out + "\r\n";
}

TEST_CASE("redis: a task hash joined into one string reads back as the array does") {
  auto fields = with_lease(task_hash(), "1795000008000000 tok-7 worker 1");
  fields.insert(
      fields.end(),
      {"checkpoint", R"({"page":3})", "history",
       R"([{"attempt":1,"decision":"succeeded","error":null,"finished_at":"2026-11-28T11:55:57.113Z","next_run_at":null,"started_at":"2026-11-28T11:55:57.113Z","worker_id":"vm:1:2"}])",
       "unique_key", ""});
  std::string token_a;
  std::string token_j;
  auto a = midas::detail::parse_task(*parse_resp(hgetall(fields)), "mail", {}, &token_a);
  auto j = midas::detail::parse_task(*parse_resp(joined(fields)), "mail", {}, &token_j);
  REQUIRE(a);
  REQUIRE(j);
  CHECK(nlohmann::json(j.value()) == nlohmann::json(a.value()));
  CHECK(token_j == "tok-7");
  CHECK(j.value().checkpoint == nlohmann::json{{"page", 3}});
  CHECK(j.value().history.size() == 1);
  CHECK(j.value().unique_key == std::optional<std::string>{""});  // an empty last value
}

TEST_CASE("redis: a joined task hash with a field left without its value is protocol_error") {
  auto fields = task_hash();
  fields.pop_back();  // "history" without a value
  CHECK(midas::detail::parse_task(*parse_resp(joined(fields)), "mail").error() ==
        errc::protocol_error);
  CHECK(midas::detail::parse_task(*parse_resp("$4\r\nseq7\r\n"), "mail").error() ==
        errc::protocol_error);
  CHECK(midas::detail::parse_task(*parse_resp("$0\r\n\r\n"), "mail").error() ==
        errc::protocol_error);
}

// The packed layout: what never changes is one field, d (see data_separator).
std::string packed(int priority = 2, int max_attempts = 25,
                   const std::string& params = R"({"to":1})") {
  return midas::detail::pack_data(priority, max_attempts, 1795000000000000, "send-email", params);
}

TEST_CASE("redis: a packed task hash reads type, params, priority, attempts and creation from d") {
  const std::vector<std::string> fields{"d",       packed(-3, 4), "status", "pending",
                                        "attempt", "0",           "run_at", "1795000000500000"};
  for (const auto& reply : {hgetall(fields), joined(fields)}) {
    auto t = midas::detail::parse_task(*parse_resp(reply), "mail", "12");
    REQUIRE(t);
    CHECK(t.value().id == "mail/12");
    CHECK(t.value().type == "send-email");
    CHECK(t.value().params == nlohmann::json{{"to", 1}});
    CHECK(t.value().priority == -3);
    CHECK(t.value().max_attempts == 4);
    CHECK(t.value().created_at == midas::TimePoint{std::chrono::microseconds{1795000000000000}});
    CHECK(t.value().updated_at == t.value().created_at);
    CHECK(t.value().run_at == midas::TimePoint{std::chrono::microseconds{1795000000500000}});
    CHECK(t.value().status == midas::TaskStatus::pending);
  }
  // Packed data with a part missing or malformed is protocol_error.
  const std::string sep{midas::detail::data_separator};
  for (const std::string& bad :
       {std::string{"2"} + sep + "25" + sep + "1795000000000000" + sep + "send-email",
        std::string{"x"} + sep + "25" + sep + "1795000000000000" + sep + "t" + sep + "{}",
        std::string{"2"} + sep + "99999999999" + sep + "1795000000000000" + sep + "t" + sep + "{}",
        std::string{"2"} + sep + "25" + sep + "1795000000000000" + sep + "t" + sep + "{not json",
        std::string{""}}) {
    const std::vector<std::string> broken{"d",       bad, "status", "pending",
                                          "attempt", "0", "run_at", "1795000000500000"};
    CHECK(midas::detail::parse_task(*parse_resp(hgetall(broken)), "mail", "12").error() ==
          errc::protocol_error);
  }
}

TEST_CASE("redis: a ready member that carries d reads as the task before its first lease") {
  const std::string member = "01795000000500000:00000000000000000042:" + packed();
  auto t = midas::detail::parse_ready_member(member, "mail");
  REQUIRE(t);
  CHECK(t.value().id == "mail/42");
  CHECK(t.value().queue == "mail");
  CHECK(t.value().type == "send-email");
  CHECK(t.value().params == nlohmann::json{{"to", 1}});
  CHECK(t.value().priority == 2);
  CHECK(t.value().status == midas::TaskStatus::pending);
  CHECK(t.value().attempt == 0);
  CHECK(t.value().run_at == midas::TimePoint{std::chrono::microseconds{1795000000500000}});
  CHECK(t.value().created_at == midas::TimePoint{std::chrono::microseconds{1795000000000000}});
  CHECK(t.value().updated_at == t.value().created_at);
  CHECK(t.value().history.empty());
  // The hash read of the same task gives the same Task.
  const std::vector<std::string> fields{"d",       packed(), "status", "pending",
                                        "attempt", "0",      "run_at", "1795000000500000"};
  auto h = midas::detail::parse_task(*parse_resp(hgetall(fields)), "mail", "42");
  REQUIRE(h);
  CHECK(nlohmann::json(t.value()) == nlohmann::json(h.value()));
  // Anything else is protocol_error: a plain member, wrong lengths or separators, bad digits.
  const std::vector<std::string> bad_members{
      "01795000000500000:00000000000000000042",
      "01795000000500000:00000000000000000042:",
      "1795000000500000:00000000000000000042:" + packed(),
      "01795000000500000-00000000000000000042:" + packed(),
      "0179500000050000x:00000000000000000042:" + packed(),
      "01795000000500000:0000000000000000004x:" + packed(),
      "01795000000500000:00000000000000000042:" + packed().substr(0, 8)};
  for (const auto& bad : bad_members) {
    CHECK(midas::detail::parse_ready_member(bad, "mail").error() == errc::protocol_error);
  }
}

// {member, status, attempt, run_at, history, checkpoint}, as the claim script returns a retry.
std::string claimed_retry(const std::vector<std::string>& parts) { return hgetall(parts); }

TEST_CASE("redis: a retry claimed from its member reads what can have changed from the hash") {
  const std::string member = "01795000000500000:00000000000000000042:" + packed();
  const std::string history =
      R"([{"attempt":1,"decision":"retry","error":null,"finished_at":"2026-11-28T11:55:57.113Z","next_run_at":"2026-11-28T11:55:58.000Z","started_at":"2026-11-28T11:55:57.113Z","worker_id":"w"}])";
  const auto reply = parse_resp(
      claimed_retry({member, "retrying", "1", "1795000009000000", history, R"({"p":1})"}));
  CHECK(midas::detail::is_member_reply(*reply));
  auto t = midas::detail::parse_claimed_member(*reply, "mail");
  REQUIRE(t);
  CHECK(t.value().id == "mail/42");
  CHECK(t.value().status == midas::TaskStatus::retrying);
  CHECK(t.value().attempt == 1);
  CHECK(t.value().run_at == midas::TimePoint{std::chrono::microseconds{1795000009000000}});
  REQUIRE(t.value().history.size() == 1);
  CHECK(t.value().history[0].decision == "retry");
  CHECK(t.value().checkpoint == nlohmann::json{{"p", 1}});
  CHECK(t.value().type == "send-email");
  // Fields the hash lacks come as ''.
  auto bare = midas::detail::parse_claimed_member(
      *parse_resp(claimed_retry({member, "pending", "0", "1795000009000000", "", ""})), "mail");
  REQUIRE(bare);
  CHECK(bare.value().history.empty());
  CHECK(bare.value().checkpoint.is_null());
  // The member alone is a task never attempted.
  const std::string alone = "$" + std::to_string(member.size()) + "\r\n" + member + "\r\n";
  CHECK(midas::detail::is_member_reply(*parse_resp(alone)));
  auto first = midas::detail::parse_claimed_member(*parse_resp(alone), "mail");
  REQUIRE(first);
  CHECK(first.value().attempt == 0);
  // A hash, joined or as an array, is not a member reply.
  CHECK_FALSE(midas::detail::is_member_reply(*parse_resp(hgetall(task_hash()))));
  CHECK_FALSE(midas::detail::is_member_reply(*parse_resp(joined(task_hash()))));
  CHECK_FALSE(midas::detail::is_member_reply(*parse_resp("*0\r\n")));
  // Anything else is protocol_error.
  const std::vector<std::vector<std::string>> bad{
      {member, "running", "1", "1795000009000000", "", ""},
      {member, "retrying", "x", "1795000009000000", "", ""},
      {member, "retrying", "1", "", "", ""},
      {member, "retrying", "1", "1795000009000000", "{not json", ""},
      {member, "retrying", "1", "1795000009000000", R"([{"attempt":"one"}])", ""},
      {member, "retrying", "1", "1795000009000000", "", "{not json"},
      {member, "retrying", "1", "1795000009000000", ""},
      {"01795000000500000:00000000000000000042", "retrying", "1", "1795000009000000", "", ""}};
  for (const auto& parts : bad) {
    CHECK(midas::detail::parse_claimed_member(*parse_resp(claimed_retry(parts)), "mail").error() ==
          errc::protocol_error);
  }
}

// ---- What the backends write ----

midas::TimePoint at(long long us) { return midas::TimePoint{std::chrono::microseconds{us}}; }

// A first attempt that succeeded, started and finished at the given microseconds since 1970.
midas::AttemptRecord succeeded(long long started_us, long long finished_us) {
  midas::AttemptRecord r;
  r.attempt = 1;
  r.started_at = at(started_us);
  r.finished_at = at(finished_us);
  r.worker_id = "vm:14108:79eed039";
  r.decision = "succeeded";
  return r;
}

// `r` as attempt `attempt` that failed with `error` and was retried.
midas::AttemptRecord retried(midas::AttemptRecord r, int attempt, midas::ErrorInfo error) {
  r.attempt = attempt;
  r.decision = "retry";
  r.next_run_at = at(1795000060000000);
  r.error = std::move(error);
  return r;
}

TEST_CASE("an attempt record is written as the JSON library writes it, byte for byte") {
  using midas::AttemptRecord;
  const AttemptRecord plain = succeeded(1795000000123456, 1795000000987654);
  const AttemptRecord failed = retried(plain, 12,
                                       {"std::system_error",
                                        "Resource temporarily unavailable \"x\"",
                                        "generic:11",
                                        503,
                                        {"outer", "inner\n"}});
  AttemptRecord odd = plain;
  odd.worker_id = "host \"a\"\\b\t\x01 \xc3\xa9 \xff end";  // quotes, controls, UTF-8, invalid
  odd.decision = "";
  odd.started_at = at(-86400000001);  // before 1970
  odd.finished_at = at(0);
  AttemptRecord late = plain;
  late.finished_at = at(7258118399999000);  // 2199-12-31T23:59:59.999Z
  // An error without context or HTTP status: those keys are left out.
  const AttemptRecord bare = retried(plain, 2, {"t", "m", "", std::nullopt, {}});
  for (const AttemptRecord& r : {plain, failed, odd, late, bare}) {
    const std::string expected =
        nlohmann::json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    CHECK(midas::detail::dump_record(r) == expected);
  }
  CHECK(midas::format_time(at(-86400000001)) == "1969-12-31T00:00:00.000Z");  // ms toward 0
  CHECK(midas::format_time(at(-1000)) == "1969-12-31T23:59:59.999Z");
  CHECK(midas::format_time(at(7258118399999000)) == "2199-12-31T23:59:59.999Z");
}

// What the JSON library reads from a stored history; nullopt if it is not one.
std::optional<std::vector<midas::AttemptRecord>> library_read(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  try {
    return j.get<std::vector<midas::AttemptRecord>>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

TEST_CASE("a history is read directly when it is plain, with what the JSON library reads") {
  using midas::AttemptRecord;
  AttemptRecord ok = succeeded(1795000000123000, 1795000000987000);  // whole milliseconds
  ok.attempt = 3;
  const AttemptRecord failed =
      retried(ok, 1, {"std::system_error", "timed out", "generic:110", 503, {"a", ""}});
  const AttemptRecord bare = retried(ok, 2, {"t", "m", "", std::nullopt, {}});
  const std::string written = "[" + midas::detail::dump_record(failed) + "," +
                              midas::detail::dump_record(bare) + "," +
                              midas::detail::dump_record(ok) + "]";
  std::vector<AttemptRecord> read;
  REQUIRE(midas::detail::read_plain_history(written, read));
  CHECK(read == std::vector<AttemptRecord>{failed, bare, ok});

  // {text, read directly}: either way read_history gives what the JSON library gives.
  const std::vector<std::pair<std::string, bool>> cases{
      {written, true},
      {"[]", true},
      {" [ \n] ", true},
      // Postgres's jsonb text: spaces after separators, keys in its own order.
      {R"([{"error": {"code": "", "type": "t", "context": ["x"], "message": "m", )"
       R"("http_status": null}, "attempt": 1, "decision": "retry", "worker_id": "w", )"
       R"("started_at": "2026-11-28T10:00:00.123Z", "finished_at": "2026-11-28T10:00:01Z", )"
       R"("next_run_at": "2026-11-28 10:00:02.5+00:00"}])",
       true},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("error":{}}])",
       true},
      // Declined, and read (or refused) by the JSON library.
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("worker_id":"a\"b"}])",
       false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       "\"worker_id\":\"\xc3\xa9\"}]",
       false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("extra":1}])",
       false},
      {R"([{"attempt":1.0,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":1e0,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":-1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":01,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":2147483648,"started_at":"2026-11-28T10:00:00Z",)"
       R"("finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":1,"attempt":2,"started_at":"2026-11-28T10:00:00Z",)"
       R"("finished_at":"2026-11-28T10:00:00Z"}])",
       false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z"}])", false},  // no finished_at
      {R"([{"attempt":1,"started_at":"yesterday","finished_at":"2026-11-28T10:00:00Z"}])", false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("error":"boom"}])",
       false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("error":{"context":["a",null],"http_status":"503"}}])",
       false},
      {R"([{"attempt":1,"started_at":"2026-11-28T10:00:00Z","finished_at":"2026-11-28T10:00:00Z",)"
       R"("decision":null}])",
       false},
      {"[] x", false},
      {"[", false},
      {"", false},
      {"null", false},
      {"{}", false},
      {"[1]", false},
  };
  for (const auto& [text, direct] : cases) {
    CAPTURE(text);
    std::vector<AttemptRecord> plain;
    CHECK(midas::detail::read_plain_history(text, plain) == direct);
    const auto expected = library_read(text);
    std::vector<AttemptRecord> got{ok};  // left as it was when the text is not a history
    CHECK(midas::detail::read_history(text, got) == expected.has_value());
    CHECK(got == expected.value_or(std::vector<AttemptRecord>{ok}));
    if (direct) CHECK(plain == expected.value_or(std::vector<AttemptRecord>{}));
  }
}

// ---- Postgres ----

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A one-row result with the task columns; nullptr cells are SQL NULL.
ResultPtr pg_row(const std::vector<const char*>& cells,
                 int columns = midas::detail::task_column_count) {
  ResultPtr r{PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK)};
  std::vector<PGresAttDesc> attrs(static_cast<std::size_t>(columns));
  static char name[] = "c";
  for (auto& a : attrs) {
    a.name = name;
    a.typid = 25;
    a.typlen = -1;
    a.atttypmod = -1;
  }
  REQUIRE(PQsetResultAttrs(r.get(), columns, attrs.data()) != 0);
  for (int col = 0; col < columns; ++col) {
    const char* v = cells[static_cast<std::size_t>(col)];
    REQUIRE(PQsetvalue(r.get(), 0, col, const_cast<char*>(v),
                       v == nullptr ? -1 : static_cast<int>(std::string{v}.size())) != 0);
  }
  return r;
}

std::vector<const char*> task_cells() {
  return {"7",
          "send-email",
          "mail",
          R"({"to": 1})",
          "pending",
          "0",
          "25",
          "0",
          "1795000000000000",
          nullptr,
          "1795000000000000",
          "1795000000000000",
          nullptr,
          nullptr,
          nullptr,
          nullptr,
          nullptr,
          "[]"};
}

TEST_CASE("postgres: a task row reads back whole") {
  auto r = pg_row(task_cells());
  auto t = midas::detail::task_from_row(r.get(), 0);
  REQUIRE(t);
  CHECK(t.value().id == "7");
  CHECK(t.value().queue == "mail");
  CHECK(t.value().max_attempts == 25);
  CHECK_FALSE(t.value().unique_key.has_value());
  CHECK_FALSE(t.value().finished_at.has_value());
}

TEST_CASE(
    "postgres: a time or int out of range, a NULL where a value must be, or a short row is "
    "protocol_error") {
  const std::vector<std::pair<std::size_t, const char*>> bad{
      {8, "9223372036854775807"},  // run_at past what a TimePoint holds
      {12, "-9223372036854775807"},
      {5, "4294967296"},  // attempt beyond int
      {7, "x"},
      {0, nullptr},
      {17, nullptr},
      {3, "{not json"},
  };
  for (const auto& [col, value] : bad) {
    CAPTURE(col);
    auto cells = task_cells();
    cells[col] = value;
    auto r = pg_row(cells);
    CHECK(midas::detail::task_from_row(r.get(), 0).error() == errc::protocol_error);
  }
  auto shorter = pg_row(task_cells(), 10);
  CHECK(midas::detail::task_from_row(shorter.get(), 0).error() == errc::protocol_error);
  auto r = pg_row(task_cells());
  CHECK(midas::detail::task_from_row(r.get(), 1).error() == errc::protocol_error);
}

}  // namespace
