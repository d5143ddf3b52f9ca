// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <midas/retry_policy.hpp>
#include <vector>

using namespace std::chrono_literals;
using midas::Duration;
using midas::Jitter;
using midas::RetryPolicy;

namespace {

/// A random source that always returns `v`.
midas::RandomSource constant(double v) {
  return [v] { return v; };
}

/// A random source that returns `values` in turn, starting again at the end.
midas::RandomSource sequence(std::vector<double> values) {
  auto state = std::make_shared<std::pair<std::vector<double>, std::size_t>>(std::move(values), 0);
  return [state] {
    auto& [vals, next] = *state;
    double v = vals[next % vals.size()];
    ++next;
    return v;
  };
}

constexpr double almost_one = 0.999999;

}  // namespace

TEST_SUITE("retry policy") {
  TEST_CASE("the Midas join schedule exponential(3, 60s) waits 180, 540 and 1620 seconds") {
    auto p = RetryPolicy::exponential(3, 60s).max_attempts(4);
    CHECK(p.base_delay(1) == Duration{180s});
    CHECK(p.base_delay(2) == Duration{540s});
    CHECK(p.base_delay(3) == Duration{1620s});
    CHECK(p.max_attempts() == 4);
    // A factory policy has no jitter unless asked: the delays are exactly the schedule.
    CHECK(p.jitter() == Jitter::none);
    CHECK(p.delay(1) == Duration{180s});
    CHECK(p.delay(2) == Duration{540s});
    CHECK(p.delay(3) == Duration{1620s});
  }

  TEST_CASE("exponential grows by its base per attempt") {
    auto p = RetryPolicy::exponential(2, 1s);
    CHECK(p.base_delay(1) == Duration{2s});
    CHECK(p.base_delay(4) == Duration{16s});
    CHECK(p.base_delay(10) == Duration{1024s});
  }

  TEST_CASE("polynomial is attempt^exponent times the unit") {
    auto p = RetryPolicy::polynomial(4, 1s);
    CHECK(p.base_delay(1) == Duration{1s});
    CHECK(p.base_delay(2) == Duration{16s});
    CHECK(p.base_delay(3) == Duration{81s});
    auto square = RetryPolicy::polynomial(2, 100ms);
    CHECK(square.base_delay(5) == Duration{2500ms});
  }

  TEST_CASE("fixed waits the same every time") {
    auto p = RetryPolicy::fixed(42s);
    CHECK(p.base_delay(1) == Duration{42s});
    CHECK(p.base_delay(7) == Duration{42s});
    CHECK(p.delay(19) == Duration{42s});
  }

  TEST_CASE("custom calls the curve with the attempt number") {
    std::vector<int> seen;
    auto p = RetryPolicy::custom([&seen](int attempt) -> Duration {
      seen.push_back(attempt);
      return Duration{attempt * 1000 + 7};
    });
    CHECK(p.base_delay(1) == Duration{1007});
    CHECK(p.base_delay(5) == Duration{5007});
    REQUIRE(seen.size() >= 2);
    CHECK(seen.front() == 1);
    CHECK(seen.back() == 5);
  }

  TEST_CASE("offset is added to every delay") {
    auto p = RetryPolicy::fixed(10s).offset(5s);
    CHECK(p.base_delay(1) == Duration{15s});
    CHECK(p.base_delay(3) == Duration{15s});
    auto e = RetryPolicy::exponential(2, 1s).offset(15s);
    CHECK(e.base_delay(3) == Duration{23s});
  }

  TEST_CASE("the cap bounds the schedule, offset included") {
    auto p = RetryPolicy::exponential(2, 1s).cap(10s);
    CHECK(p.cap() == Duration{10s});
    CHECK(p.base_delay(3) == Duration{8s});
    CHECK(p.base_delay(4) == Duration{10s});
    CHECK(p.base_delay(5) == Duration{10s});
    auto with_offset = RetryPolicy::fixed(8s).offset(5s).cap(10s);
    CHECK(with_offset.base_delay(1) == Duration{10s});
  }

  TEST_CASE("the default cap is six hours") {
    CHECK(RetryPolicy::fixed(1s).cap() == Duration{6h});
    CHECK(RetryPolicy::exponential(3, 60s).base_delay(30) == Duration{6h});
  }

  TEST_CASE("a huge attempt number gives the cap, not an overflow") {
    auto p = RetryPolicy::exponential(2, 1s);
    for (int attempt : {62, 64, 100, 1000, 100000}) {
      CAPTURE(attempt);
      CHECK(p.base_delay(attempt) == Duration{6h});
      CHECK(p.delay(attempt) == Duration{6h});
    }
    CHECK(RetryPolicy::polynomial(10, 1h).base_delay(1000) == Duration{6h});
  }

  TEST_CASE("max_attempts counts the first attempt and can_retry says whether another is allowed") {
    auto p = RetryPolicy::fixed(1s).max_attempts(4);
    CHECK(p.max_attempts() == 4);
    CHECK(p.can_retry(1));
    CHECK(p.can_retry(3));
    CHECK_FALSE(p.can_retry(4));
    CHECK_FALSE(p.can_retry(5));
    auto once = RetryPolicy::fixed(1s).max_attempts(1);
    CHECK_FALSE(once.can_retry(1));
  }

  TEST_CASE("setters chain and keep each other's values") {
    auto p =
        RetryPolicy::exponential(3, 60s).max_attempts(4).cap(20min).offset(1s).jitter(Jitter::full);
    CHECK(p.max_attempts() == 4);
    CHECK(p.cap() == Duration{20min});
    CHECK(p.jitter() == Jitter::full);
    CHECK(p.base_delay(1) == Duration{181s});
    CHECK(p.base_delay(3) == Duration{20min});
  }

  TEST_CASE("Jitter::none returns the schedule whatever the random source says") {
    auto p = RetryPolicy::fixed(100s).jitter(Jitter::none).random_source(constant(almost_one));
    CHECK(p.delay(1) == Duration{100s});
  }

  TEST_CASE("Jitter::full spreads the delay from 0 to d") {
    auto low = RetryPolicy::fixed(100s).jitter(Jitter::full).random_source(constant(0.0));
    CHECK(low.delay(1) == Duration{0});
    auto high = RetryPolicy::fixed(100s).jitter(Jitter::full).random_source(constant(almost_one));
    CHECK(high.delay(1) >= Duration{99'990ms});
    CHECK(high.delay(1) <= Duration{100s});
  }

  TEST_CASE("Jitter::equal spreads the delay from d/2 to d") {
    auto low = RetryPolicy::fixed(100s).jitter(Jitter::equal).random_source(constant(0.0));
    CHECK(low.delay(1) == Duration{50s});
    auto high = RetryPolicy::fixed(100s).jitter(Jitter::equal).random_source(constant(almost_one));
    CHECK(high.delay(1) >= Duration{99'990ms});
    CHECK(high.delay(1) <= Duration{100s});
  }

  TEST_CASE("Jitter::proportional adds up to the fraction") {
    auto low =
        RetryPolicy::fixed(100s).jitter(Jitter::proportional, 0.2).random_source(constant(0.0));
    CHECK(low.delay(1) == Duration{100s});
    auto high = RetryPolicy::fixed(100s)
                    .jitter(Jitter::proportional, 0.2)
                    .random_source(constant(almost_one));
    CHECK(high.delay(1) >= Duration{119'990ms});
    CHECK(high.delay(1) <= Duration{120s});
  }

  TEST_CASE("jitter draws a new random number for every delay") {
    auto p = RetryPolicy::fixed(100s)
                 .jitter(Jitter::full)
                 .random_source(sequence({0.0, 0.5, 0.25, 0.75}));
    CHECK(p.delay(1) == Duration{0s});
    CHECK(p.delay(1) == Duration{50s});
    CHECK(p.delay(1) == Duration{25s});
    CHECK(p.delay(1) == Duration{75s});
    CHECK(p.delay(1) == Duration{0s});
  }

  TEST_CASE("jitter never goes past the cap") {
    auto p =
        RetryPolicy::fixed(6h).jitter(Jitter::proportional).random_source(constant(almost_one));
    CHECK(p.delay(1) <= Duration{6h});
    CHECK(p.delay(1) >= Duration{0});
    auto capped = RetryPolicy::exponential(2, 1s)
                      .cap(60s)
                      .jitter(Jitter::proportional, 0.5)
                      .random_source(constant(almost_one));
    CHECK(capped.delay(10) <= Duration{60s});
    CHECK(capped.delay(10) >= Duration{59s});
  }

  TEST_CASE(
      "a random source that strays outside 0 to 1 still gives a delay between 0 and the cap") {
    // libstdc++'s generate_canonical can return exactly 1.0; a user source may be worse.
    for (double v : {1.0, 1.5, -0.5, 1e9, -1e9}) {
      CAPTURE(v);
      for (Jitter j : {Jitter::full, Jitter::equal, Jitter::proportional}) {
        auto p = RetryPolicy::fixed(50s).cap(60s).jitter(j, 0.5).random_source(constant(v));
        Duration d = p.delay(1);
        CHECK(d >= Duration{0});
        CHECK(d <= Duration{60s});
      }
    }
  }

  TEST_CASE("a curve that returns a negative delay gives zero, never a negative delay") {
    auto p = RetryPolicy::custom([](int) { return Duration{-5s}; });
    CHECK(p.base_delay(1) == Duration{0});
    CHECK(p.delay(1) == Duration{0});
    auto j = RetryPolicy::custom([](int) { return Duration{-5s}; })
                 .jitter(Jitter::equal)
                 .random_source(constant(almost_one));
    CHECK(j.delay(2) >= Duration{0});
  }

  TEST_CASE("standard() is 20 attempts of 15 s + 2^n s, +0-10% jitter, capped at 6 h") {
    auto p = RetryPolicy::standard();
    CHECK(p.max_attempts() == 20);
    CHECK(p.cap() == Duration{6h});
    CHECK(p.jitter() == Jitter::proportional);
    CHECK(p.base_delay(1) == Duration{17s});
    CHECK(p.base_delay(2) == Duration{19s});
    CHECK(p.base_delay(5) == Duration{47s});
    CHECK(p.base_delay(10) == Duration{1039s});
    CHECK(p.base_delay(14) == Duration{16399s});  // 4 h 33 min: still under the cap
    CHECK(p.base_delay(15) == Duration{6h});      // 15 + 32768 s is past it

    auto low = RetryPolicy::standard().random_source(constant(0.0));
    CHECK(low.delay(10) == Duration{1039s});
    auto high = RetryPolicy::standard().random_source(constant(almost_one));
    CHECK(high.delay(10) > Duration{1039s + 103s});
    CHECK(high.delay(10) <= Duration{1039s + 104s});  // 10% of 1039 s is 103.9 s
    CHECK(high.delay(19) == Duration{6h});
  }

  TEST_CASE("standard() jitter stays within +0-10% with the default random source") {
    auto p = RetryPolicy::standard();
    for (int i = 0; i < 200; ++i) {
      Duration d = p.delay(3);
      REQUIRE(d >= Duration{23s});
      REQUIRE(d <= Duration{25'300ms});
    }
  }

  TEST_CASE("default_random stays at or above 0 and below 1 and is not constant") {
    double lo = 1;
    double hi = 0;
    for (int i = 0; i < 1000; ++i) {
      double v = midas::default_random();
      REQUIRE(v >= 0.0);
      REQUIRE(v < 1.0);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    CHECK(hi - lo > 0.5);
  }

  TEST_CASE("a policy is a value: copies keep their own settings") {
    auto a = RetryPolicy::fixed(10s).max_attempts(3);
    auto b = a;
    b.max_attempts(7).cap(5s);
    CHECK(a.max_attempts() == 3);
    CHECK(a.base_delay(1) == Duration{10s});
    CHECK(b.max_attempts() == 7);
    CHECK(b.base_delay(1) == Duration{5s});
  }
}
