// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <midas/error.hpp>
#include <midas/error_classifier.hpp>
#include <stdexcept>
#include <string>
#include <system_error>

#include "printers.hpp"

using namespace std::chrono_literals;
using midas::Decision;
using midas::Duration;
using midas::ErrorClassifier;
using midas::Failure;
using midas::HttpError;

namespace unit_test {

/// A user's own timeout type, and a subclass of it.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class ConnectTimeout : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};
/// Unrelated to timeouts.
class ValidationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws `root` wrapped twice with std::throw_with_nested, as a transport error reaches a
/// handler through an HTTP client and a journey layer; returns what the outermost catch sees.
template <class Root>
std::exception_ptr wrapped_twice(Root root) {
  try {
    try {
      try {
        throw root;
      } catch (...) {
        std::throw_with_nested(std::runtime_error("POST /join failed"));
      }
    } catch (...) {
      std::throw_with_nested(std::logic_error("attempt-join journey failed"));
    }
  } catch (...) {
    return std::current_exception();
  }
  return {};
}

std::system_error system_timeout() {
  return std::system_error(std::make_error_code(std::errc::timed_out), "connect to merchant");
}

}  // namespace unit_test

using unit_test::wrapped_twice;

TEST_SUITE("error classifier") {
  TEST_CASE("a std::errc::timed_out wrapped twice in nested exceptions is still a timeout") {
    auto e = wrapped_twice(unit_test::system_timeout());
    auto c = ErrorClassifier{}.retry_on(std::errc::timed_out).otherwise(Decision::fail());
    CHECK(c.classify(Failure{e}) == Decision::retry());

    // The same failure without the rule goes to the default: the rule above is what matched.
    CHECK(ErrorClassifier{}.otherwise(Decision::fail()).classify(Failure{e}) == Decision::fail());
  }

  TEST_CASE("a user timeout type wrapped twice is found by retry_on<T>()") {
    auto e = wrapped_twice(unit_test::TimeoutError("read timed out"));
    auto c = ErrorClassifier{}.retry_on<unit_test::TimeoutError>().otherwise(Decision::fail());
    CHECK(c.classify(Failure{e}) == Decision::retry());

    auto other = wrapped_twice(unit_test::ValidationError("bad card number"));
    CHECK(c.classify(Failure{other}) == Decision::fail());
  }

  TEST_CASE("the chain of a nested failure is outermost first, root cause last") {
    Failure f{wrapped_twice(unit_test::TimeoutError("read timed out"))};
    REQUIRE(f.chain().size() == 3);
    CHECK(f.message() == "read timed out");
    CHECK(f.find<std::logic_error>() != nullptr);
    REQUIRE(f.find<unit_test::TimeoutError>() != nullptr);
    CHECK(std::string{f.find<unit_test::TimeoutError>()->what()} == "read timed out");
    CHECK(f.find<unit_test::ValidationError>() == nullptr);
    // runtime_error is both the middle layer and the root's base: the outermost match comes first.
    REQUIRE(f.find<std::runtime_error>() != nullptr);
    CHECK(std::string{f.find<std::runtime_error>()->what()} == "POST /join failed");
  }

  TEST_CASE("an error code deep in the chain is seen by has()") {
    Failure f{wrapped_twice(unit_test::system_timeout())};
    CHECK(f.has(std::make_error_condition(std::errc::timed_out)));
    CHECK(f.has(std::make_error_code(std::errc::timed_out)));
    CHECK_FALSE(f.has(std::make_error_condition(std::errc::connection_refused)));
    REQUIRE_FALSE(f.codes().empty());
    CHECK(f.codes().back() == std::errc::timed_out);
  }

  TEST_CASE("a subclass matches a rule for its base type") {
    auto e = wrapped_twice(unit_test::ConnectTimeout("connect timed out"));
    auto c = ErrorClassifier{}.retry_on<unit_test::TimeoutError>().otherwise(Decision::fail());
    CHECK(c.classify(Failure{e}) == Decision::retry());

    auto by_std_base = ErrorClassifier{}.fail_on<std::runtime_error>().otherwise(Decision::retry());
    CHECK(by_std_base.classify(Failure{std::make_exception_ptr(unit_test::ConnectTimeout("x"))}) ==
          Decision::fail());
  }

  TEST_CASE("a base type does not match a rule for its subclass") {
    auto e = std::make_exception_ptr(unit_test::TimeoutError("plain timeout"));
    auto c = ErrorClassifier{}.retry_on<unit_test::ConnectTimeout>().otherwise(Decision::fail());
    CHECK(c.classify(Failure{e}) == Decision::fail());
  }

  TEST_CASE("HTTP 503 with Retry-After 7 s gives retry_after(7 s)") {
    auto c = ErrorClassifier{}.retry_on_status({503}).otherwise(Decision::fail());
    Failure direct{std::make_exception_ptr(HttpError(503, "service unavailable", Duration{7s}))};
    CHECK(direct.http_status() == 503);
    CHECK(direct.retry_after() == Duration{7s});
    CHECK(c.classify(direct) == Decision::retry_after(7s));

    Failure nested{wrapped_twice(HttpError(503, "service unavailable", Duration{7s}))};
    CHECK(nested.http_status() == 503);
    CHECK(c.classify(nested) == Decision::retry_after(7s));
  }

  TEST_CASE("HTTP 503 without Retry-After gives a plain retry") {
    auto c = ErrorClassifier{}.retry_on_status({502, 503, 504}).otherwise(Decision::fail());
    Failure f{wrapped_twice(HttpError(503, "service unavailable"))};
    CHECK_FALSE(f.retry_after().has_value());
    CHECK(c.classify(f) == Decision::retry());
  }

  TEST_CASE("a status not in the list goes to the next rule") {
    auto c = ErrorClassifier{}
                 .retry_on_status({503})
                 .fail_on_status({400, 404})
                 .otherwise(Decision::cancel());
    CHECK(c.classify(Failure{std::make_exception_ptr(HttpError(404, "no such member"))}) ==
          Decision::fail());
    CHECK(c.classify(Failure{std::make_exception_ptr(HttpError(500, "boom"))}) ==
          Decision::cancel());
  }

  TEST_CASE("the HTTP status nearest the root cause is the one that counts") {
    // A gateway reports 502 because the merchant behind it answered 429.
    std::exception_ptr e;
    try {
      try {
        throw HttpError(429, "slow down", Duration{30s});
      } catch (...) {
        std::throw_with_nested(HttpError(502, "bad gateway"));
      }
    } catch (...) {
      e = std::current_exception();
    }
    Failure f{e};
    CHECK(f.http_status() == 429);
    CHECK(f.retry_after() == Duration{30s});
    auto c = ErrorClassifier{}.retry_on_status({429}).fail_on_status({502});
    CHECK(c.classify(f) == Decision::retry_after(30s));
  }

  TEST_CASE("the first matching rule wins") {
    auto e = wrapped_twice(unit_test::ConnectTimeout("connect timed out"));
    auto fail_first =
        ErrorClassifier{}.fail_on<unit_test::TimeoutError>().retry_on<std::exception>();
    CHECK(fail_first.classify(Failure{e}) == Decision::fail());
    auto retry_first =
        ErrorClassifier{}.retry_on<std::exception>().fail_on<unit_test::TimeoutError>();
    CHECK(retry_first.classify(Failure{e}) == Decision::retry());

    auto by_code_first = ErrorClassifier{}
                             .on(std::errc::timed_out, Decision::snooze(5s))
                             .retry_on<std::system_error>()
                             .otherwise(Decision::fail());
    CHECK(by_code_first.classify(Failure{wrapped_twice(unit_test::system_timeout())}) ==
          Decision::snooze(5s));
  }

  TEST_CASE("otherwise() sets the decision when no rule matches") {
    auto e = std::make_exception_ptr(unit_test::ValidationError("bad card number"));
    CHECK(ErrorClassifier{}.otherwise(Decision::fail()).classify(Failure{e}) == Decision::fail());
    CHECK(ErrorClassifier{}
              .retry_on<unit_test::TimeoutError>()
              .otherwise(Decision::cancel())
              .classify(Failure{e}) == Decision::cancel());
  }

  TEST_CASE("without rules or otherwise() the default is retry") {
    auto e = std::make_exception_ptr(unit_test::ValidationError("bad card number"));
    CHECK(ErrorClassifier{}.classify(Failure{e}) == Decision::retry());
    CHECK(ErrorClassifier::standard().classify(Failure{e}) == Decision::retry());
    CHECK(ErrorClassifier{}.fail_on<unit_test::TimeoutError>().classify(Failure{e}) ==
          Decision::retry());
  }

  TEST_CASE("when(predicate, decision) matches on anything in the failure") {
    auto c =
        ErrorClassifier{}
            .when([](const Failure& f) { return f.message().find("quota") != std::string::npos; },
                  Decision::snooze(1h))
            .otherwise(Decision::fail());
    CHECK(c.classify(Failure{wrapped_twice(std::runtime_error("daily quota exceeded"))}) ==
          Decision::snooze(1h));
    CHECK(c.classify(Failure{wrapped_twice(std::runtime_error("card blocked"))}) ==
          Decision::fail());
  }

  TEST_CASE("when(function) decides whatever the function returns, or passes") {
    auto c = ErrorClassifier{}
                 .when([](const Failure& f) -> std::optional<Decision> {
                   if (auto s = f.http_status(); s && *s >= 520) {
                     return Decision::retry_after(std::chrono::minutes{*s - 519});
                   }
                   return std::nullopt;
                 })
                 .otherwise(Decision::fail());
    CHECK(c.classify(Failure{std::make_exception_ptr(HttpError(531, "agent down"))}) ==
          Decision::retry_after(12min));
    CHECK(c.classify(Failure{std::make_exception_ptr(HttpError(404, "no"))}) == Decision::fail());
  }

  TEST_CASE("a returned midas::errc is classified by its code") {
    Failure f{midas::make_error_code(midas::errc::backend_unavailable), "merchant unreachable"};
    CHECK(f.chain().empty());
    CHECK(f.has(midas::make_error_code(midas::errc::backend_unavailable)));
    auto c =
        ErrorClassifier{}.retry_on(midas::errc::backend_unavailable).otherwise(Decision::fail());
    CHECK(c.classify(f) == Decision::retry());
    CHECK(c.classify(Failure{midas::make_error_code(midas::errc::invalid_payload)}) ==
          Decision::fail());
  }

  TEST_CASE("a returned midas::errc::timeout matches a std::errc::timed_out rule") {
    auto c = ErrorClassifier{}.retry_on(std::errc::timed_out).otherwise(Decision::fail());
    CHECK(c.classify(Failure{midas::make_error_code(midas::errc::timeout)}) == Decision::retry());
  }

  TEST_CASE("a returned HTTP error code is classified by its status") {
    Failure f{midas::make_http_error(429)};
    CHECK(f.http_status() == 429);
    auto c = ErrorClassifier{}.retry_on_status({429}).otherwise(Decision::fail());
    CHECK(c.classify(f) == Decision::retry());
    CHECK(c.classify(Failure{midas::make_http_error(400)}) == Decision::fail());
    auto by_code = ErrorClassifier{}.on(midas::make_http_error(400), Decision::fail());
    CHECK(by_code.classify(Failure{midas::make_http_error(400)}) == Decision::fail());
  }

  TEST_CASE("an exception that is not a std::exception is classifiable") {
    auto e = std::make_exception_ptr(42);
    CHECK(ErrorClassifier{}.classify(Failure{e}) == Decision::retry());
    auto c = ErrorClassifier{}
                 .retry_on<std::exception>()
                 .retry_on(std::errc::timed_out)
                 .retry_on_status({503})
                 .otherwise(Decision::cancel());
    CHECK(c.classify(Failure{e}) == Decision::cancel());
    Failure f{e};
    CHECK_FALSE(f.info().type.empty());
    CHECK_FALSE(f.http_status().has_value());
  }

  TEST_CASE("a non-std exception nested under std ones is still reached") {
    std::exception_ptr e;
    try {
      try {
        throw 42;
      } catch (...) {
        std::throw_with_nested(std::runtime_error("outer"));
      }
    } catch (...) {
      e = std::current_exception();
    }
    Failure f{e};
    CHECK(f.chain().size() == 2);
    CHECK(f.find<int>() != nullptr);
    auto c = ErrorClassifier{}.on<int>(Decision::fail()).otherwise(Decision::retry());
    CHECK(c.classify(f) == Decision::fail());
  }

  TEST_CASE("Failure::info() records the root cause for the history") {
    SUBCASE("a std::system_error under two layers") {
      auto info = Failure{wrapped_twice(unit_test::system_timeout())}.info();
      CHECK(info.type == "std::system_error");
      CHECK(info.message.find("connect to merchant") != std::string::npos);
      CHECK(info.code == "generic:" + std::to_string(ETIMEDOUT));
      CHECK_FALSE(info.http_status.has_value());
    }
    SUBCASE("a user type gets its demangled name") {
      auto info = Failure{wrapped_twice(unit_test::ConnectTimeout("connect timed out"))}.info();
      CHECK(info.type == "unit_test::ConnectTimeout");
      CHECK(info.message == "connect timed out");
      CHECK(info.code.empty());
      // What it was wrapped in, outermost first, for an operator reading the history.
      CHECK(info.context ==
            std::vector<std::string>{"attempt-join journey failed", "POST /join failed"});
    }
    SUBCASE("an error that was not wrapped has no context") {
      auto info = Failure{std::make_exception_ptr(std::runtime_error("plain"))}.info();
      CHECK(info.message == "plain");
      CHECK(info.context.empty());
    }
    SUBCASE("an HttpError carries its status") {
      auto info =
          Failure{wrapped_twice(HttpError(503, "service unavailable", Duration{7s}))}.info();
      CHECK(info.type == "midas::HttpError");
      CHECK(info.message == "service unavailable");
      CHECK(info.http_status == 503);
    }
    SUBCASE("a returned midas error code") {
      auto info =
          Failure{midas::make_error_code(midas::errc::backend_unavailable), "merchant unreachable"}
              .info();
      CHECK(info.type == "midas");
      CHECK(info.message.find("merchant unreachable") != std::string::npos);
      CHECK(info.code ==
            "midas:" + std::to_string(static_cast<int>(midas::errc::backend_unavailable)));
    }
    SUBCASE("a returned HTTP error code") {
      auto info = Failure{midas::make_http_error(429)}.info();
      CHECK(info.code == std::string{midas::http_category().name()} + ":429");
      CHECK(info.http_status == 429);
      CHECK_FALSE(info.message.empty());
    }
  }

  TEST_CASE("Decision kinds have names and compare by kind and delay") {
    CHECK(midas::to_string(Decision::Kind::retry) == "retry");
    CHECK(midas::to_string(Decision::Kind::retry_after) == "retry_after");
    CHECK(midas::to_string(Decision::Kind::snooze) == "snooze");
    CHECK(midas::to_string(Decision::Kind::fail) == "fail");
    CHECK(midas::to_string(Decision::Kind::cancel) == "cancel");
    CHECK(Decision::retry_after(7s).delay() == Duration{7s});
    CHECK(Decision::retry_after(7s) != Decision::retry_after(8s));
    CHECK(Decision::snooze(7s) != Decision::retry_after(7s));
  }
}
