// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <chrono>
#include <midas/clock.hpp>
#include <midas/error.hpp>
#include <midas/queue.hpp>
#include <string>
#include <utility>

#include "printers.hpp"

using namespace std::chrono_literals;

TEST_SUITE("connect") {
  TEST_CASE("memory:// opens a working in-process queue") {
    auto q = midas::connect("memory://");
    REQUIRE(q);
    REQUIRE(q.value() != nullptr);
    auto& queue = *q.value();
    auto id = queue.enqueue(midas::TaskSpec{.type = "send-email"});
    REQUIRE(id);
    auto task = queue.get(id.value().id);
    REQUIRE(task);
    CHECK(task.value().type == "send-email");
    CHECK(task.value().status == midas::TaskStatus::pending);
  }

  TEST_CASE("every memory:// connection is a new, empty queue") {
    auto a = midas::connect("memory://").value();
    auto b = midas::connect("memory://").value();
    auto id = a->enqueue(midas::TaskSpec{.type = "send-email"}).value().id;
    CHECK(a->get(id));
    auto other = b->get(id);
    REQUIRE_FALSE(other);
    CHECK(other.error() == midas::errc::task_not_found);
  }

  TEST_CASE("memory:// uses the clock it is given") {
    midas::ManualClock clock;
    auto q = midas::connect("memory://", {.clock = &clock}).value();
    CHECK(q->clock().now() == clock.now());
    clock.advance(90s);
    CHECK(q->clock().now() == clock.now());
    auto id = q->enqueue(midas::TaskSpec{.type = "t"}).value().id;
    CHECK(q->get(id).value().created_at == clock.now());
  }

  TEST_CASE("without a clock, memory:// uses the system clock") {
    auto q = midas::connect("memory://").value();
    auto before = std::chrono::system_clock::now();
    auto now = q->clock().now();
    auto after = std::chrono::system_clock::now();
    CHECK(now >= before);
    CHECK(now <= after);
  }

  TEST_CASE("redis and postgres URLs reach their backend, or say it is not built") {
    // Port 1 on loopback: nothing listens there, so a backend in this build fails to connect at
    // once (backend_unavailable); a backend left out of the build says so (backend_not_built).
    // Either way the URL parsed and the scheme was recognised.
#ifdef MIDAS_HAS_REDIS
    constexpr auto redis_error = midas::errc::backend_unavailable;
#else
    constexpr auto redis_error = midas::errc::backend_not_built;
#endif
#ifdef MIDAS_HAS_POSTGRES
    constexpr auto postgres_error = midas::errc::backend_unavailable;
#else
    constexpr auto postgres_error = midas::errc::backend_not_built;
#endif
    const std::pair<const char*, midas::errc> cases[] = {
        {"redis://127.0.0.1:1", redis_error},
        {"redis://:secret@127.0.0.1:1/2?prefix=midas", redis_error},
        {"postgresql://u:p@127.0.0.1:1/db", postgres_error},
        {"postgres://u:p@127.0.0.1:1/db?schema=midas", postgres_error},
    };
    for (const auto& [url, expected] : cases) {
      CAPTURE(url);
      auto q = midas::connect(url);
      REQUIRE_FALSE(q);
      CHECK(q.error() == expected);
    }
  }

  TEST_CASE("an unknown scheme is errc::unsupported_scheme") {
    for (const char* url : {"ftp://x", "mysql://u@h/db", "http://localhost:8080"}) {
      CAPTURE(url);
      auto q = midas::connect(url);
      REQUIRE_FALSE(q);
      CHECK(q.error() == midas::errc::unsupported_scheme);
    }
  }

  TEST_CASE("a URL that does not parse is errc::invalid_url") {
    for (const char* url : {"", "memory", "redis://host:notaport", "://x", "redis://host:99999"}) {
      CAPTURE(url);
      auto q = midas::connect(url);
      REQUIRE_FALSE(q);
      CHECK(q.error() == midas::errc::invalid_url);
    }
  }

  TEST_CASE("make_memory_queue is the same backend without a URL") {
    midas::ManualClock clock;
    auto q = midas::make_memory_queue({.clock = &clock});
    REQUIRE(q != nullptr);
    CHECK(q->clock().now() == clock.now());
    auto id = q->enqueue(midas::TaskSpec{.type = "t"});
    REQUIRE(id);
    CHECK_FALSE(id.value().duplicate);
  }
}
