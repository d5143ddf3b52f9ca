// SPDX-License-Identifier: MIT
#include "url.hpp"

#include <charconv>

namespace midas::detail {
namespace {

constexpr std::size_t max_url_length = 4096;

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool is_scheme_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

}  // namespace

std::optional<std::string> Url::param(std::string_view key) const {
  std::optional<std::string> value;
  for (const auto& [k, v] : query) {
    if (k == key) value = v;
  }
  return value;
}

result<Url> parse_url(std::string_view text) {
  if (text.empty() || text.size() > max_url_length) return errc::invalid_url;
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return errc::invalid_url;
  }
  Url url;
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return errc::invalid_url;
  for (char c : text.substr(0, sep)) {
    if (!is_scheme_char(c)) return errc::invalid_url;
    url.scheme.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  std::string_view rest = text.substr(sep + 3);

  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    auto path = decode(rest.substr(slash + 1), false);
    if (!path) return errc::invalid_url;
    url.path = std::move(*path);
  }

  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::string_view user = userinfo;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      auto password = decode(userinfo.substr(colon + 1), false);
      if (!password) return errc::invalid_url;
      url.password = std::move(*password);
    }
    auto decoded = decode(user, false);
    if (!decoded) return errc::invalid_url;
    if (!decoded->empty()) url.user = std::move(*decoded);
  }

  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:6379
    auto close = authority.find(']');
    if (close == std::string_view::npos) return errc::invalid_url;
    url.host = std::string{authority.substr(1, close - 1)};
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return errc::invalid_url;
      port = after.substr(1);
      if (port.empty()) return errc::invalid_url;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    url.host = std::string{authority.substr(0, colon)};
    port = authority.substr(colon + 1);
    if (port.empty()) return errc::invalid_url;
  } else {
    url.host = std::string{authority};
  }
  for (char c : url.host) {
    if (c == '@' || c == '[' || c == ']' || c == '/' || c == '%') return errc::invalid_url;
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
      return errc::invalid_url;
    }
    url.port = static_cast<std::uint16_t>(value);
  }

  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = decode(pair.substr(0, eq), true);
    auto value =
        decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value || key->empty()) return errc::invalid_url;
    url.query.emplace_back(std::move(*key), std::move(*value));
  }
  return url;
}

}  // namespace midas::detail
