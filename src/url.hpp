// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "midas/result.hpp"

namespace midas::detail {

/// A backend URL taken apart: scheme://[user[:password]@]host[:port][/path][?k=v&...].
/// User, password, path and query are percent-decoded.
struct Url {
  std::string scheme{};  ///< Lower-cased.
  std::optional<std::string> user{};
  std::optional<std::string> password{};
  std::string host{};  ///< Without brackets for IPv6 literals.
  std::optional<std::uint16_t> port{};
  std::string path{};  ///< Without the leading '/'.
  std::vector<std::pair<std::string, std::string>> query{};

  /// The last value of query parameter `key`, if present.
  [[nodiscard]] std::optional<std::string> param(std::string_view key) const;
};

/// Parses `text`; `errc::invalid_url` for anything malformed (no scheme, bad port, bad escapes,
/// control characters, more than 4 KiB).
[[nodiscard]] result<Url> parse_url(std::string_view text);

}  // namespace midas::detail
