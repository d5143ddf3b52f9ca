// SPDX-License-Identifier: MIT
#pragma once

#include <boost/outcome/std_result.hpp>  // not result.hpp: that one uses boost::system::error_code
#include <boost/outcome/try.hpp>
#include <boost/version.hpp>

#include "midas/error.hpp"

namespace midas {

namespace outcome = BOOST_OUTCOME_V2_NAMESPACE;

/// A value or a `std::error_code`. `value()` on a failure throws `std::system_error`, which is the
/// exception-style API: there is no second, throwing overload set.
template <class T>
using result = outcome::std_result<T>;

using outcome::failure;
using outcome::success;

}  // namespace midas

/// `MIDAS_TRY(v, expr)`: declares `v` as the value of `expr`, or returns its error.
/// Works on Outcome v2.1 (Boost 1.74, which declares the variable itself) and v2.2.
#if BOOST_VERSION >= 107600
#define MIDAS_TRY(var, ...) BOOST_OUTCOME_TRY(auto&& var, __VA_ARGS__)
#else
#define MIDAS_TRY(var, ...) BOOST_OUTCOME_TRY(var, __VA_ARGS__)
#endif
/// `MIDAS_TRYV(expr)`: returns the error of `expr`, if any. One statement, so it is safe after an
/// `if` without braces.
#define MIDAS_TRYV(...)              \
  do {                               \
    BOOST_OUTCOME_TRYV(__VA_ARGS__); \
  } while (false)
