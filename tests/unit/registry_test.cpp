// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <midas/registry.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "printers.hpp"

using namespace std::chrono_literals;
using midas::Registry;
using midas::RetryPolicy;
using midas::TaskContext;

namespace unit_test {

struct SendEmail {
  std::string to;
  std::string subject;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SendEmail, to, subject)

struct ChargeCard {
  std::string card;
  int amount_pence = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ChargeCard, card, amount_pence)

struct NeverRegistered {
  int x = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(NeverRegistered, x)

midas::result<void> ok_handler(const SendEmail&, TaskContext&) { return midas::success(); }

/// A TaskContext over a throwaway memory queue, enough to call a registered handler directly.
struct ContextFixture {
  std::unique_ptr<midas::Queue> queue = midas::make_memory_queue();
  midas::ClaimedTask claimed{};
  TaskContext ctx{*queue, claimed, std::stop_token{}, midas::Duration{8s}};
};

}  // namespace unit_test

using unit_test::ChargeCard;
using unit_test::SendEmail;

TEST_SUITE("registry") {
  TEST_CASE("spec<T>() fills type, queue, priority and max_attempts from the registration") {
    Registry r;
    r.add<SendEmail>(
        "send-email", unit_test::ok_handler,
        {.queue = "mail", .retry = RetryPolicy::exponential(2, 1s).max_attempts(5), .priority = 3});
    auto s = r.spec(SendEmail{.to = "ada@example.com", .subject = "hello"});
    CHECK(s.type == "send-email");
    CHECK(s.queue == "mail");
    CHECK(s.priority == 3);
    CHECK(s.max_attempts == 5);
    CHECK(s.params == nlohmann::json{{"to", "ada@example.com"}, {"subject", "hello"}});
    CHECK_FALSE(s.unique_key.has_value());
    CHECK_FALSE(s.run_at.has_value());
    CHECK(s.delay == midas::Duration{0});
  }

  TEST_CASE("a type registered with default options gets the default queue and policy") {
    Registry r;
    r.add<SendEmail>("send-email", unit_test::ok_handler);
    auto s = r.spec(SendEmail{});
    CHECK(s.queue == "default");
    CHECK(s.priority == 0);
    CHECK(s.max_attempts == RetryPolicy::standard().max_attempts());
  }

  TEST_CASE("SpecOptions override the registration") {
    Registry r;
    r.add<SendEmail>(
        "send-email", unit_test::ok_handler,
        {.queue = "mail", .retry = RetryPolicy::fixed(1s).max_attempts(5), .priority = 3});
    auto run_at = midas::TimePoint{std::chrono::seconds{1893456000}};
    auto s = r.spec(SendEmail{.to = "a@b", .subject = "s"}, {.queue = "urgent",
                                                             .priority = -1,
                                                             .run_at = run_at,
                                                             .delay = 30s,
                                                             .unique_key = "welcome:a@b",
                                                             .max_attempts = 2});
    CHECK(s.type == "send-email");
    CHECK(s.queue == "urgent");
    CHECK(s.priority == -1);
    CHECK(s.run_at == run_at);
    CHECK(s.delay == midas::Duration{30s});
    CHECK(s.unique_key == "welcome:a@b");
    CHECK(s.max_attempts == 2);
  }

  TEST_CASE("spec by name works for JSON handlers") {
    Registry r;
    r.add_json(
        "raw",
        [](const nlohmann::json&, TaskContext&) -> midas::result<void> { return midas::success(); },
        {.queue = "raw-queue", .retry = RetryPolicy::fixed(1s).max_attempts(7)});
    auto s = r.spec("raw", nlohmann::json{{"k", 1}});
    CHECK(s.type == "raw");
    CHECK(s.queue == "raw-queue");
    CHECK(s.max_attempts == 7);
    CHECK(s.params == nlohmann::json{{"k", 1}});
  }

  TEST_CASE("an unregistered type or name throws std::invalid_argument") {
    Registry r;
    r.add<SendEmail>("send-email", unit_test::ok_handler);
    CHECK_THROWS_AS((void)r.spec(unit_test::NeverRegistered{}), std::invalid_argument);
    CHECK_THROWS_AS((void)r.spec("nope", nlohmann::json::object()), std::invalid_argument);
    CHECK_NOTHROW((void)r.spec("send-email", nlohmann::json::object()));
  }

  TEST_CASE("registering a name twice throws std::invalid_argument") {
    Registry r;
    r.add<SendEmail>("send-email", unit_test::ok_handler);
    CHECK_THROWS_AS(r.add<ChargeCard>("send-email", [](const ChargeCard&, TaskContext&) {}),
                    std::invalid_argument);
    CHECK_THROWS_AS(r.add_json("send-email",
                               [](const nlohmann::json&, TaskContext&) -> midas::result<void> {
                                 return midas::success();
                               }),
                    std::invalid_argument);
    // The first registration is untouched.
    CHECK(r.spec(SendEmail{}).type == "send-email");
    CHECK(r.names() == std::vector<std::string>{"send-email"});
  }

  TEST_CASE("registering one C++ type under two names throws std::invalid_argument") {
    // spec<T>() could not tell which of the two a SendEmail is meant for.
    Registry r;
    r.add<SendEmail>("send-email", unit_test::ok_handler);
    CHECK_THROWS_AS(r.add<SendEmail>("send-email-v2", unit_test::ok_handler),
                    std::invalid_argument);
    CHECK(r.find("send-email-v2") == nullptr);
    CHECK(r.spec(SendEmail{}).type == "send-email");
  }

  TEST_CASE("an invalid type or queue name throws std::invalid_argument") {
    Registry r;
    CHECK_THROWS_AS(r.add<SendEmail>("send email", unit_test::ok_handler), std::invalid_argument);
    CHECK_THROWS_AS(r.add<SendEmail>("", unit_test::ok_handler), std::invalid_argument);
    CHECK_THROWS_AS(r.add<SendEmail>("send-email", unit_test::ok_handler, {.queue = "bad queue"}),
                    std::invalid_argument);
    CHECK(r.names().empty());
  }

  TEST_CASE("queues() lists every queue once, in registration order") {
    Registry r;
    CHECK(r.queues().empty());
    r.add<SendEmail>("send-email", unit_test::ok_handler, {.queue = "mail"});
    r.add<ChargeCard>("charge-card", [](const ChargeCard&, TaskContext&) {}, {.queue = "payments"});
    r.add_json(
        "newsletter",
        [](const nlohmann::json&, TaskContext&) -> midas::result<void> { return midas::success(); },
        {.queue = "mail"});
    r.add_json("audit", [](const nlohmann::json&, TaskContext&) -> midas::result<void> {
      return midas::success();
    });
    CHECK(r.queues() == std::vector<std::string>{"mail", "payments", "default"});
  }

  TEST_CASE("names() is sorted and find() returns the registration") {
    Registry r;
    r.add<SendEmail>("send-email", unit_test::ok_handler,
                     {.queue = "mail", .retry = RetryPolicy::fixed(2s).max_attempts(9)});
    r.add<ChargeCard>("charge-card", [](const ChargeCard&, TaskContext&) {});
    CHECK(r.names() == std::vector<std::string>{"charge-card", "send-email"});
    const midas::TaskType* t = r.find("send-email");
    REQUIRE(t != nullptr);
    CHECK(t->name == "send-email");
    CHECK(t->options.queue == "mail");
    CHECK(t->options.retry.max_attempts() == 9);
    CHECK(t->options.retry.base_delay(1) == midas::Duration{2s});
    CHECK(static_cast<bool>(t->handler));
    CHECK(r.find("nope") == nullptr);
    CHECK(r.find("") == nullptr);
  }

  TEST_CASE("a typed handler receives its params converted to the C++ type") {
    Registry r;
    SendEmail seen{};
    r.add<SendEmail>("send-email", [&seen](const SendEmail& e, TaskContext&) { seen = e; });
    unit_test::ContextFixture f;
    auto res = r.find("send-email")
                   ->handler(nlohmann::json{{"to", "ada@example.com"}, {"subject", "hi"}}, f.ctx);
    CHECK(res);
    CHECK(seen.to == "ada@example.com");
    CHECK(seen.subject == "hi");
    CHECK_FALSE(f.ctx.decision().has_value());
  }

  TEST_CASE("a typed handler's returned error comes back unchanged") {
    Registry r;
    r.add<SendEmail>("send-email", [](const SendEmail&, TaskContext&) -> midas::result<void> {
      return midas::make_http_error(503);
    });
    unit_test::ContextFixture f;
    auto res = r.find("send-email")->handler(nlohmann::json{{"to", "a"}, {"subject", "b"}}, f.ctx);
    REQUIRE_FALSE(res);
    CHECK(res.error() == midas::make_http_error(503));
  }

  TEST_CASE("a number too large for any integer fails the attempt instead of being cast") {
    // nlohmann_json turns 2.7e103 into an int with a plain cast: undefined behaviour, found by
    // fuzz/task_json_fuzzer.cpp. midas refuses such params before decoding them.
    Registry r;
    bool called = false;
    r.add<ChargeCard>("charge", [&called](const ChargeCard&, TaskContext&) { called = true; });
    for (const char* text :
         {R"({"card":"c","amount_pence":2.7e103})",
          R"({"card":"c","amount_pence":1,"extra":[{"deep":-1e19}]})",
          R"({"card":"c","amount_pence":2147483648.0})", R"({"card":"c","amount_pence":3e9})"}) {
      CAPTURE(text);
      unit_test::ContextFixture f;
      auto res = r.find("charge")->handler(nlohmann::json::parse(text), f.ctx);
      CHECK_FALSE(res);
      CHECK_FALSE(called);
      REQUIRE(f.ctx.decision().has_value());
      CHECK(*f.ctx.decision() == midas::Decision::fail());
      CHECK(f.ctx.decision_reason().find("2^31") != std::string::npos);
    }
    // Large but representable numbers, and large integers, still decode as before.
    CHECK(midas::detail::numbers_fit_integers(nlohmann::json::parse(
        R"({"a":2147483647.0,"b":-2147483648.0,"c":18446744073709551615,"d":1.5})")));
  }

  TEST_CASE("params that do not fit the C++ type fail the attempt for good, naming the type") {
    Registry r;
    bool called = false;
    r.add<SendEmail>("send-email", [&called](const SendEmail&, TaskContext&) { called = true; });
    unit_test::ContextFixture f;
    auto res = r.find("send-email")->handler(nlohmann::json{{"to", 42}}, f.ctx);
    CHECK_FALSE(res);
    CHECK_FALSE(called);
    REQUIRE(f.ctx.decision().has_value());
    CHECK(*f.ctx.decision() == midas::Decision::fail());
    CHECK(f.ctx.decision_reason().find("send-email") != std::string::npos);
  }
}
