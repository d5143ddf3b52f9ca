// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <midas/error.hpp>
#include <midas/result.hpp>
#include <set>
#include <string>
#include <system_error>

using midas::errc;

namespace {

/// Every enumerator; a new one must be added here (and to the README's error table).
constexpr errc all_errc[] = {
    errc::backend_unavailable,
    errc::timeout,
    errc::conflict,
    errc::in_doubt,
    errc::protocol_error,
    errc::task_not_found,
    errc::duplicate_task,
    errc::invalid_payload,
    errc::invalid_argument,
    errc::invalid_url,
    errc::unsupported_scheme,
    errc::backend_not_built,
    errc::lease_lost,
    errc::invalid_state,
    errc::unknown_task_type,
    errc::payload_too_large,
    errc::handler_decision,
    errc::handler_exception,
};

midas::result<int> parse_positive(int v) {
  if (v <= 0) return errc::invalid_argument;
  return v;
}

midas::result<int> doubled(int v) {
  MIDAS_TRY(x, parse_positive(v));
  return x * 2;
}

}  // namespace

TEST_SUITE("errc") {
  TEST_CASE("the category is called midas and 0 is never an error") {
    CHECK(std::string{midas::error_category().name()} == "midas");
    CHECK(static_cast<int>(errc::backend_unavailable) == 1);
    for (errc e : all_errc) {
      CHECK(static_cast<int>(e) != 0);
    }
  }

  TEST_CASE("every errc has its own non-empty message") {
    std::set<std::string> seen;
    for (errc e : all_errc) {
      std::error_code ec = e;
      CAPTURE(static_cast<int>(e));
      CHECK(&ec.category() == &midas::error_category());
      std::string m = ec.message();
      CHECK_FALSE(m.empty());
      CHECK(seen.insert(m).second);
    }
    // An out-of-range value still gets a message rather than a crash.
    CHECK_FALSE(midas::error_category().message(9999).empty());
  }

  TEST_CASE("is_transient is true for unavailable, timeout and conflict only") {
    for (errc e : all_errc) {
      CAPTURE(static_cast<int>(e));
      bool expected = e == errc::backend_unavailable || e == errc::timeout || e == errc::conflict;
      CHECK(midas::is_transient(e) == expected);
    }
    CHECK_FALSE(midas::is_transient(std::error_code{}));
    CHECK_FALSE(midas::is_transient(errc::in_doubt));
  }

  TEST_CASE("errc::timeout compares equal to std::errc::timed_out") {
    std::error_code ec = errc::timeout;
    CHECK(ec == std::errc::timed_out);
    CHECK(ec.default_error_condition() == std::errc::timed_out);
    std::error_code other = errc::conflict;
    CHECK_FALSE(other == std::errc::timed_out);
    std::error_code lease = errc::lease_lost;
    CHECK_FALSE(lease == std::errc::timed_out);
  }

  TEST_CASE("errc values are not confused with std::errc values of the same number") {
    std::error_code ours = errc::backend_unavailable;  // 1
    CHECK(ours != std::make_error_code(static_cast<std::errc>(1)));
    CHECK_FALSE(ours == static_cast<std::errc>(1));
  }

  TEST_CASE("HTTP statuses travel as error codes of their own category") {
    auto ec = midas::make_http_error(503);
    CHECK(ec.value() == 503);
    CHECK(&ec.category() == &midas::http_category());
    CHECK(&ec.category() != &midas::error_category());
    CHECK_FALSE(ec.message().empty());
    CHECK(ec.message() != midas::make_http_error(404).message());
    CHECK(midas::make_http_error(429) == midas::make_http_error(429));
    CHECK(midas::make_http_error(429) != midas::make_http_error(503));
  }

  TEST_CASE("result and MIDAS_TRY carry errc values") {
    auto good = doubled(21);
    REQUIRE(good);
    CHECK(good.value() == 42);
    auto bad = doubled(-1);
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == errc::invalid_argument);
    CHECK_THROWS_AS((void)bad.value(), std::system_error);
  }
}
