// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

/// Balance labels of the original Midas: `minify_number` and the capped value label.
namespace midas_api::crypto {

/// MAX_VALUE_LABEL_LENGTH of the original: a longer value label is replaced by "Reward".
inline constexpr std::size_t kMaxValueLabelLength = 11;

/** The original `minify_number`: below 10000 the number itself; otherwise divide by 1000
 *  (integer division) while the quotient / 1000 is > 1, and append k, M, B or T by the number of
 *  divisions: 10000 -> "10k", 123456 -> "123k", 1000000 -> "1000k" (the original's quirk),
 *  1234567 -> "1M". Negative numbers are printed as they are (the original compared < 10000).
 *  Beyond "T" (where the original raised IndexError) it stops dividing: 10^16 -> "10000T". */
[[nodiscard]] std::string minify_number(std::int64_t n);

/// `points_label = minify_number(int(points))`: `points` truncated toward zero (20.9 -> "20").
/// Non-finite or out-of-range points give "0".
[[nodiscard]] std::string points_label(double points);

/** "£" + value with two decimals ("£1480.00", "£20.10", "£-100.01"; -0 prints as 0.00), then
 *  `cap_value_label`. Non-finite values give "Reward" too. */
[[nodiscard]] std::string value_label(double value);

/// `label`, or "Reward" when it is longer than 11 characters (code points, as Python's len:
/// "£1234567.00" is 11 characters and 12 bytes, and stays).
[[nodiscard]] std::string cap_value_label(std::string_view label);

}  // namespace midas_api::crypto
