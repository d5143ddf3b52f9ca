// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <chrono>
#include <midas/error.hpp>
#include <midas/task.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "printers.hpp"

using namespace std::chrono_literals;
using midas::AttemptRecord;
using midas::ErrorInfo;
using midas::Task;
using midas::TaskSpec;
using midas::TaskStatus;
using midas::TimePoint;
using nlohmann::json;

namespace {

/// 2026-11-27T19:06:00.123Z
TimePoint example_time() {
  using namespace std::chrono;
  return sys_days{year{2026} / November / 27} + 19h + 6min + 123ms;
}

AttemptRecord failed_attempt() {
  AttemptRecord a;
  a.attempt = 1;
  a.started_at = example_time();
  a.finished_at = example_time() + 1500ms;
  a.worker_id = "host:42:abc";
  a.error = ErrorInfo{.type = "midas::HttpError",
                      .message = "service unavailable",
                      .code = "http:503",
                      .http_status = 503};
  a.decision = "retry_after";
  a.next_run_at = example_time() + 7s;
  return a;
}

Task full_task() {
  Task t;
  t.id = "01J0000000000000000000000";
  t.type = "attempt-join";
  t.queue = "joins";
  t.params = json{{"slug", "iceland-bonus-card"}, {"user_id", 17}, {"tags", {"a", "b"}}};
  t.status = TaskStatus::retrying;
  t.attempt = 2;
  t.max_attempts = 4;
  t.priority = -3;
  t.run_at = example_time() + 540s;
  t.unique_key = "join:17:iceland";
  t.created_at = example_time() - 1h;
  t.updated_at = example_time();
  t.finished_at = std::nullopt;
  t.lease_owner = "host:42:abc";
  t.lease_expires_at = example_time() + 8s;
  t.checkpoint = json{{"step", "card-created"}};
  t.history = {failed_attempt()};
  AttemptRecord ok;
  ok.attempt = 2;
  ok.started_at = example_time() + 7s;
  ok.finished_at = example_time() + 8s;
  ok.worker_id = "host:43:def";
  ok.decision = "succeeded";
  t.history.push_back(ok);
  return t;
}

void check_same(const Task& a, const Task& b) {
  CHECK(a.id == b.id);
  CHECK(a.type == b.type);
  CHECK(a.queue == b.queue);
  CHECK(a.params == b.params);
  CHECK(a.status == b.status);
  CHECK(a.attempt == b.attempt);
  CHECK(a.max_attempts == b.max_attempts);
  CHECK(a.priority == b.priority);
  CHECK(a.run_at == b.run_at);
  CHECK(a.unique_key == b.unique_key);
  CHECK(a.created_at == b.created_at);
  CHECK(a.updated_at == b.updated_at);
  CHECK(a.finished_at == b.finished_at);
  CHECK(a.lease_owner == b.lease_owner);
  CHECK(a.lease_expires_at == b.lease_expires_at);
  CHECK(a.checkpoint == b.checkpoint);
  CHECK(a.history == b.history);
}

}  // namespace

TEST_SUITE("task json") {
  TEST_CASE("format_time writes ISO 8601 UTC with milliseconds") {
    CHECK(midas::format_time(example_time()) == "2026-11-27T19:06:00.123Z");
    CHECK(midas::format_time(TimePoint{}) == "1970-01-01T00:00:00.000Z");
    using namespace std::chrono;
    CHECK(midas::format_time(sys_days{year{2030} / January / 1}) == "2030-01-01T00:00:00.000Z");
  }

  TEST_CASE("parse_time reads what format_time writes, and the common variants") {
    auto t = midas::parse_time("2026-11-27T19:06:00.123Z");
    REQUIRE(t);
    CHECK(t.value() == example_time());

    auto no_fraction = midas::parse_time("2026-11-27T19:06:00Z");
    REQUIRE(no_fraction);
    CHECK(no_fraction.value() == example_time() - 123ms);

    auto offset = midas::parse_time("2026-11-27T19:06:00.123+00:00");
    REQUIRE(offset);
    CHECK(offset.value() == example_time());
  }

  TEST_CASE("a task whose times are out of range is refused as JSON, not read as garbage") {
    json j = json::parse(R"({"id":"42","type":"t","queue":"q","params":{},"status":"failed",
      "attempt":2,"max_attempts":4,"priority":0,"run_at":"2026-11-27T19:06:00.123Z",
      "unique_key":null,"created_at":"2026-11-27T19:06:00.123Z",
      "updated_at":"1013-11-27T19:06:01.000Z","finished_at":null,"lease_owner":null,
      "lease_expires_at":null,"checkpoint":null,"history":[]})");
    CHECK_THROWS_AS((void)j.get<midas::Task>(), json::exception);
    j["updated_at"] = "1678-01-01T00:00:00Z";  // the earliest whole year that fits
    CHECK(j.get<midas::Task>().updated_at == midas::parse_time("1678-01-01T00:00:00Z").value());
  }

  TEST_CASE("integer fields refuse floats, strings and out-of-range values as JSON errors") {
    // nlohmann's get<int>() of 6.4e68 is a cast with undefined behaviour (fuzz/task_json_fuzzer).
    for (const char* text :
         {R"({"type":"t","priority":6.4e68})", R"({"type":"t","priority":1.5})",
          R"({"type":"t","max_attempts":"3"})", R"({"type":"t","priority":2147483648})",
          R"({"type":"t","delay_ms":18446744073709551615})",
          R"({"type":"t","priority":-2147483649})"}) {
      CAPTURE(text);
      CHECK_THROWS_AS((void)json::parse(text).get<midas::TaskSpec>(), json::exception);
    }
    const auto spec =
        json::parse(R"({"type":"t","priority":-3,"max_attempts":2147483647,"delay_ms":5})")
            .get<midas::TaskSpec>();
    CHECK(spec.priority == -3);
    CHECK(spec.max_attempts == 2147483647);
    CHECK(spec.delay == midas::Duration{5});
  }

  TEST_CASE("format_time and parse_time round-trip") {
    for (auto t :
         {example_time(), example_time() + 999ms, example_time() + 24h * 400, TimePoint{}}) {
      auto text = midas::format_time(t);
      CAPTURE(text);
      auto back = midas::parse_time(text);
      REQUIRE(back);
      CHECK(back.value() == t);
      CHECK(midas::format_time(back.value()) == text);
    }
  }

  TEST_CASE("parse_time rejects garbage with errc::invalid_argument") {
    for (const char* text :
         {"", "garbage", "2026-11-27", "2026-11-27T19:06:00", "2026-11-27T19:06:00.123",
          "2026-13-01T00:00:00Z", "2026-11-27T25:00:00Z", "2026-11-27T19:61:00Z",
          "2026-11-27T19:06:00.123Zjunk", "27/11/2026 19:06", "2026-11-27T19:06:00.abcZ", "-",
          // Outside what a nanosecond TimePoint holds: the conversion overflowed (found by
          // fuzz/task_json_fuzzer.cpp; its input had "updated_at": "1013-11-27T19:06:01.000Z").
          "1013-11-27T19:06:01.000Z", "0000-01-01T00:00:00Z", "1677-12-31T23:59:59Z",
          "2262-04-12T00:00:00Z", "9999-12-31T23:59:59Z"}) {
      CAPTURE(text);
      auto r = midas::parse_time(text);
      REQUIRE_FALSE(r);
      CHECK(r.error() == midas::errc::invalid_argument);
    }
  }

  TEST_CASE("statuses have stable names and parse back") {
    const std::pair<TaskStatus, const char*> names[] = {
        {TaskStatus::pending, "pending"},   {TaskStatus::running, "running"},
        {TaskStatus::retrying, "retrying"}, {TaskStatus::succeeded, "succeeded"},
        {TaskStatus::failed, "failed"},     {TaskStatus::cancelled, "cancelled"},
    };
    for (auto [status, name] : names) {
      CAPTURE(name);
      CHECK(midas::to_string(status) == name);
      auto parsed = midas::parse_task_status(name);
      REQUIRE(parsed);
      CHECK(parsed.value() == status);
      CHECK(json(status) == name);
      CHECK(json(name).get<TaskStatus>() == status);
    }
  }

  TEST_CASE("parse_task_status rejects anything else") {
    for (const char* name : {"", "done", "pending ", "cancel", "succeed", "0"}) {
      CAPTURE(name);
      auto r = midas::parse_task_status(name);
      REQUIRE_FALSE(r);
      CHECK(r.error() == midas::errc::invalid_argument);
    }
    CHECK_THROWS(json("done").get<TaskStatus>());
  }

  TEST_CASE("is_finished is true exactly for succeeded, failed and cancelled") {
    CHECK_FALSE(midas::is_finished(TaskStatus::pending));
    CHECK_FALSE(midas::is_finished(TaskStatus::running));
    CHECK_FALSE(midas::is_finished(TaskStatus::retrying));
    CHECK(midas::is_finished(TaskStatus::succeeded));
    CHECK(midas::is_finished(TaskStatus::failed));
    CHECK(midas::is_finished(TaskStatus::cancelled));
  }

  TEST_CASE("a Task round-trips through JSON with statuses as names and times as ISO 8601") {
    Task t = full_task();
    json j = t;
    CHECK(j.at("status") == "retrying");
    CHECK(j.at("run_at") == "2026-11-27T19:15:00.123Z");
    CHECK(j.at("created_at") == "2026-11-27T18:06:00.123Z");
    CHECK(j.at("params").at("slug") == "iceland-bonus-card");
    REQUIRE(j.at("history").is_array());
    CHECK(j.at("history").size() == 2);

    check_same(j.get<Task>(), t);
    // Through text too, as a backend stores it.
    check_same(json::parse(j.dump()).get<Task>(), t);
  }

  TEST_CASE("a Task with every optional empty round-trips") {
    Task t;
    t.id = "1";
    t.type = "send-email";
    t.queue = "default";
    t.status = TaskStatus::succeeded;
    t.created_at = example_time();
    t.updated_at = example_time();
    t.finished_at = example_time() + 1s;
    Task back = json::parse(json(t).dump()).get<Task>();
    check_same(back, t);
    CHECK_FALSE(back.unique_key.has_value());
    CHECK_FALSE(back.lease_owner.has_value());
    CHECK(back.checkpoint.is_null());
  }

  TEST_CASE("an AttemptRecord round-trips, error and next run included") {
    AttemptRecord a = failed_attempt();
    json j = a;
    CHECK(j.at("started_at") == "2026-11-27T19:06:00.123Z");
    CHECK(j.at("decision") == "retry_after");
    CHECK(j.at("error").at("http_status") == 503);
    CHECK_FALSE(j.at("error").contains("context"));  // only written when there is one
    CHECK(j.get<AttemptRecord>() == a);

    a.error->context = {"535 Message was not sent", "POST /join failed"};
    j = a;
    CHECK(j.at("error").at("context") == json{"535 Message was not sent", "POST /join failed"});
    CHECK(json::parse(j.dump()).get<AttemptRecord>() == a);

    AttemptRecord ok;
    ok.attempt = 3;
    ok.started_at = example_time();
    ok.finished_at = example_time() + 2s;
    ok.worker_id = "w";
    ok.decision = "succeeded";
    CHECK(json::parse(json(ok).dump()).get<AttemptRecord>() == ok);
  }

  TEST_CASE("a TaskSpec round-trips through JSON") {
    TaskSpec s{.type = "send-email",
               .params = json{{"to", "ada@example.com"}},
               .queue = "mail",
               .priority = 5,
               .run_at = example_time(),
               .delay = 30s,
               .unique_key = "welcome:ada",
               .max_attempts = 3};
    json j = s;
    CHECK(j.at("run_at") == "2026-11-27T19:06:00.123Z");
    auto back = json::parse(j.dump()).get<TaskSpec>();
    CHECK(back.type == s.type);
    CHECK(back.params == s.params);
    CHECK(back.queue == s.queue);
    CHECK(back.priority == s.priority);
    CHECK(back.run_at == s.run_at);
    CHECK(back.delay == s.delay);
    CHECK(back.unique_key == s.unique_key);
    CHECK(back.max_attempts == s.max_attempts);
  }

  TEST_CASE("a Task with a malformed time or status does not parse") {
    json j = full_task();
    SUBCASE("time") { j["run_at"] = "yesterday"; }
    SUBCASE("status") { j["status"] = "exploded"; }
    SUBCASE("attempt") { j["attempt"] = "two"; }
    CHECK_THROWS(j.get<Task>());
  }
}

TEST_SUITE("task validation") {
  TEST_CASE("is_valid_name accepts 1 to 128 letters, digits and the marks _ . : -") {
    for (const char* ok :
         {"a", "send-email", "attempt_join", "billing.v2:retry", "Q9", "-", "a.b:c_d-e"}) {
      CAPTURE(ok);
      CHECK(midas::is_valid_name(ok));
    }
    CHECK(midas::is_valid_name(std::string(128, 'x')));
  }

  TEST_CASE("is_valid_name rejects empty, too long and other characters") {
    for (const char* bad :
         {"", "send email", "a/b", "ünicode", "tab\t", "new\nline", "semi;colon", "star*", "{q}"}) {
      CAPTURE(bad);
      CHECK_FALSE(midas::is_valid_name(bad));
    }
    CHECK_FALSE(midas::is_valid_name(std::string(129, 'x')));
    CHECK_FALSE(midas::is_valid_name(std::string_view("a\0b", 3)));
  }

  TEST_CASE("validate accepts a plain spec") {
    CHECK(midas::validate(TaskSpec{.type = "send-email"}));
    CHECK(midas::validate(TaskSpec{.type = "send-email", .queue = "mail", .max_attempts = 4}));
  }

  TEST_CASE("validate rejects bad names and attempt counts with errc::invalid_argument") {
    TaskSpec s{.type = "send-email"};
    SUBCASE("empty type") { s.type = ""; }
    SUBCASE("type with a space") { s.type = "send email"; }
    SUBCASE("empty queue") { s.queue = ""; }
    SUBCASE("queue too long") { s.queue = std::string(129, 'q'); }
    SUBCASE("negative max_attempts") { s.max_attempts = -1; }
    SUBCASE("negative delay") { s.delay = midas::Duration{-1}; }
    auto r = midas::validate(s);
    REQUIRE_FALSE(r);
    CHECK(r.error() == midas::errc::invalid_argument);
  }

  TEST_CASE("validate rejects params past max_params_bytes with errc::payload_too_large") {
    TaskSpec s{.type = "send-email"};
    s.params = json{{"blob", std::string(midas::max_params_bytes + 1, 'x')}};
    auto r = midas::validate(s);
    REQUIRE_FALSE(r);
    CHECK(r.error() == midas::errc::payload_too_large);

    s.params = json{{"blob", std::string(1000, 'x')}};
    CHECK(midas::validate(s));
  }
}
