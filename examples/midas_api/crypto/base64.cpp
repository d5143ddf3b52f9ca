// SPDX-License-Identifier: MIT
#include "crypto/base64.hpp"

#include <array>
#include <cstdint>

namespace midas_api::crypto {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 6-bit value of each byte, or -1 when it is not in the alphabet.
constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  }
  return table;
}
constexpr auto kDecode = make_decode_table();

Error bad(std::string message) { return Error{ErrorKind::bad_base64, std::move(message)}; }

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest == 1) {
    const std::uint32_t v = byte(i) << 16;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += '=';
  }
  return out;
}

Expected<std::string> base64_decode(std::string_view text) {
  if (text.empty()) return Error{ErrorKind::empty_input, "empty base64 input"};
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=' || kDecode[static_cast<unsigned char>(c)] >= 0) continue;
    if (c == ' ') {
      return bad("invalid base64: a space at position " + std::to_string(i) +
                 " (a '+' that was not URL-encoded?)");
    }
    return bad("invalid base64: unexpected character at position " + std::to_string(i));
  }
  if (text.size() % 4 != 0) {
    return bad("invalid base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  }
  std::size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  if (const auto first_pad = text.find('=');
      first_pad != std::string_view::npos && first_pad != text.size() - padding) {
    return bad("invalid base64: '=' at position " + std::to_string(first_pad) + " before the end");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t pad = last ? padding : 0;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const auto d = k < 4 - pad ? kDecode[static_cast<unsigned char>(text[i + k])] : 0;
      v = v << 6 | static_cast<std::uint32_t>(d);
    }
    // As Python's b64decode, bits left over before the padding are ignored.
    out += static_cast<char>(v >> 16 & 0xFF);
    if (pad < 2) out += static_cast<char>(v >> 8 & 0xFF);
    if (pad < 1) out += static_cast<char>(v & 0xFF);
  }
  return out;
}

std::string spaces_to_plus(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c == ' ') c = '+';
  }
  return out;
}

}  // namespace midas_api::crypto
