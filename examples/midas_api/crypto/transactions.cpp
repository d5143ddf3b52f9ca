// SPDX-License-Identifier: MIT
#include "crypto/transactions.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <map>

namespace midas_api::crypto {

std::string md5_hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  // EVP_Digest with MD5 cannot fail short of memory exhaustion; an empty result then.
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_md5(), nullptr) != 1) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0F];
  }
  return out;
}

std::vector<std::string> hash_transactions(std::span<const TransactionText> txs,
                                           std::int64_t scheme_account_id) {
  std::vector<std::string> hashes;
  hashes.reserve(txs.size());
  std::map<std::string, int> seen;
  const std::string id = std::to_string(scheme_account_id);
  for (const auto& t : txs) {
    std::string s = t.date + t.description + t.points + id + t.location.value_or("");
    const int index = seen[s]++;
    hashes.push_back(md5_hex(s + std::to_string(index)));
  }
  return hashes;
}

namespace {

std::string format_datetime(std::chrono::sys_seconds t, char separator) {
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{t - day};
  std::array<char, 40> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02u%c%02d:%02d:%02d+00:00",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), separator, static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf.data();
}

/// Reads exactly `width` digits at `pos`; -1 if they are not all digits.
int digits(std::string_view s, std::size_t pos, std::size_t width) {
  if (pos + width > s.size()) return -1;
  int v = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::string iso_datetime(std::chrono::sys_seconds t) { return format_datetime(t, 'T'); }

std::string response_datetime(std::chrono::sys_seconds t) { return format_datetime(t, ' '); }

std::optional<std::chrono::sys_seconds> parse_iso_datetime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const int h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) return std::nullopt;
  if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  std::chrono::seconds offset{0};
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int oh = digits(s, pos + 1, 2);
    if (pos + 3 >= s.size() || s[pos + 3] != ':') return std::nullopt;
    const int om = digits(s, pos + 4, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return std::nullopt;
    offset = std::chrono::hours{oh} + std::chrono::minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const std::chrono::sys_seconds local = std::chrono::sys_days{ymd} + std::chrono::hours{h} +
                                         std::chrono::minutes{mi} + std::chrono::seconds{sec};
  return local - offset;
}

}  // namespace midas_api::crypto
