// SPDX-License-Identifier: MIT
#include "crypto/hashids.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace midas_api::crypto {
namespace {

constexpr std::string_view kSeparators = "cfhistuCFHISTU";
constexpr double kSeparatorRatio = 3.5;  // at most this many alphabet characters per separator
constexpr std::size_t kGuardRatio = 12;  // one guard per this many alphabet characters
constexpr std::size_t kMinAlphabet = 16;

/// The "consistent shuffle" of hashids: a salt-driven Fisher-Yates-like permutation.
void shuffle(std::string& alphabet, std::string_view salt) {
  if (salt.empty() || alphabet.size() < 2) return;
  std::size_t v = 0;
  std::size_t p = 0;
  for (std::size_t i = alphabet.size() - 1; i > 0; --i, ++v) {
    v %= salt.size();
    const auto integer = static_cast<std::size_t>(static_cast<unsigned char>(salt[v]));
    p += integer;
    const std::size_t j = (integer + v + p) % i;
    std::swap(alphabet[i], alphabet[j]);
  }
}

/// `number` written in base alphabet.size() with `alphabet` as digits (most significant first).
std::string to_alphabet(std::uint64_t number, std::string_view alphabet) {
  std::string out;
  const std::uint64_t base = alphabet.size();
  do {
    out.insert(out.begin(), alphabet[static_cast<std::size_t>(number % base)]);
    number /= base;
  } while (number != 0);
  return out;
}

/// The inverse of to_alphabet; nullopt on a foreign character or a 64-bit overflow.
std::optional<std::uint64_t> from_alphabet(std::string_view text, std::string_view alphabet) {
  const std::uint64_t base = alphabet.size();
  std::uint64_t number = 0;
  for (const char c : text) {
    const auto pos = alphabet.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    if (number > (UINT64_MAX - pos) / base) return std::nullopt;
    number = number * base + pos;
  }
  return number;
}

/// `text` split at every character of `delimiters` (empty pieces kept, like str.split).
std::vector<std::string_view> split_any(std::string_view text, std::string_view delimiters) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (delimiters.find(text[i]) != std::string_view::npos) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

HashidsOptions record_uid_options() {
  return HashidsOptions{.salt = "midas-example-salt-1",
                        .min_length = 32,
                        .alphabet = "abcdefghijklmnopqrstuvwxyz1234567890"};
}

Expected<Hashids> Hashids::create(HashidsOptions options) {
  std::string unique;
  for (const char c : options.alphabet) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return Error{ErrorKind::bad_argument, "hashids alphabet must be ASCII"};
    }
    if (c == ' ') return Error{ErrorKind::bad_argument, "hashids alphabet must not hold spaces"};
    if (unique.find(c) == std::string::npos) unique += c;
  }
  if (unique.size() < kMinAlphabet) {
    return Error{ErrorKind::bad_argument, "hashids alphabet needs at least 16 unique characters"};
  }
  Hashids h;
  h.salt_ = std::move(options.salt);
  h.min_length_ = options.min_length;
  // Separators are the standard separator letters the alphabet holds, taken out of it.
  std::string separators;
  std::string alphabet;
  for (const char c : kSeparators) {
    if (unique.find(c) != std::string::npos) separators += c;
  }
  for (const char c : unique) {
    if (separators.find(c) == std::string::npos) alphabet += c;
  }
  shuffle(separators, h.salt_);
  // Keep about one separator per 3.5 alphabet characters: borrow from the alphabet or drop some.
  if (separators.empty() ||
      static_cast<double>(alphabet.size()) / static_cast<double>(separators.size()) >
          kSeparatorRatio) {
    auto wanted =
        static_cast<std::size_t>(std::ceil(static_cast<double>(alphabet.size()) / kSeparatorRatio));
    if (wanted == 1) wanted = 2;
    if (wanted > separators.size()) {
      const std::size_t missing = wanted - separators.size();
      separators += alphabet.substr(0, missing);
      alphabet.erase(0, missing);
    } else {
      separators.resize(wanted);
    }
  }
  shuffle(alphabet, h.salt_);
  // Guards (used to pad short hashids) come from the alphabet, or from the separators when the
  // alphabet is tiny.
  const std::size_t guard_count = (alphabet.size() + kGuardRatio - 1) / kGuardRatio;
  if (alphabet.size() < 3) {
    h.guards_ = separators.substr(0, guard_count);
    separators.erase(0, guard_count);
  } else {
    h.guards_ = alphabet.substr(0, guard_count);
    alphabet.erase(0, guard_count);
  }
  h.alphabet_ = std::move(alphabet);
  h.separators_ = std::move(separators);
  return h;
}

std::string Hashids::encode(std::uint64_t number) const {
  return encode(std::span<const std::uint64_t>(&number, 1));
}

std::string Hashids::encode(std::span<const std::uint64_t> numbers) const {
  if (numbers.empty()) return {};
  std::uint64_t numbers_id = 0;
  for (std::size_t i = 0; i < numbers.size(); ++i) numbers_id += numbers[i] % (i + 100);

  std::string alphabet = alphabet_;
  const char lottery = alphabet[static_cast<std::size_t>(numbers_id % alphabet.size())];
  std::string out(1, lottery);
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    // Each number gets its own alphabet, shuffled by lottery + salt + the previous alphabet.
    std::string buffer = std::string(1, lottery) + salt_ + alphabet;
    buffer.resize(alphabet.size());
    shuffle(alphabet, buffer);
    const std::string digits = to_alphabet(numbers[i], alphabet);
    out += digits;
    if (i + 1 < numbers.size()) {
      const std::uint64_t n =
          numbers[i] % (static_cast<unsigned char>(digits.front()) + static_cast<std::uint64_t>(i));
      out += separators_[static_cast<std::size_t>(n % separators_.size())];
    }
  }

  if (out.size() < min_length_) {
    const auto first = static_cast<unsigned char>(out[0]);
    out.insert(out.begin(),
               guards_[static_cast<std::size_t>((numbers_id + first) % guards_.size())]);
    if (out.size() < min_length_) {
      const auto third = static_cast<unsigned char>(out[2]);
      out += guards_[static_cast<std::size_t>((numbers_id + third) % guards_.size())];
    }
  }
  const std::size_t half = alphabet.size() / 2;
  while (out.size() < min_length_) {
    const std::string key = alphabet;
    shuffle(alphabet, key);
    out = alphabet.substr(half) + out + alphabet.substr(0, half);
    if (out.size() > min_length_) {
      const std::size_t excess = out.size() - min_length_;
      out = out.substr(excess / 2, min_length_);
    }
  }
  return out;
}

std::vector<std::uint64_t> Hashids::decode(std::string_view hashid) const {
  if (hashid.empty()) return {};
  // The guards split off the padding: the payload is the middle (or second) piece.
  const auto by_guards = split_any(hashid, guards_);
  const std::string_view payload =
      by_guards.size() == 2 || by_guards.size() == 3 ? by_guards[1] : by_guards[0];
  if (payload.empty()) return {};
  const char lottery = payload.front();
  std::string alphabet = alphabet_;
  std::vector<std::uint64_t> numbers;
  for (const auto part : split_any(payload.substr(1), separators_)) {
    std::string buffer = std::string(1, lottery) + salt_ + alphabet;
    buffer.resize(alphabet.size());
    shuffle(alphabet, buffer);
    const auto n = from_alphabet(part, alphabet);
    if (!n) return {};
    numbers.push_back(*n);
  }
  // Only a string this encoder would produce is accepted.
  if (encode(numbers) != hashid) return {};
  return numbers;
}

std::optional<std::uint64_t> Hashids::decode_one(std::string_view hashid) const {
  const auto numbers = decode(hashid);
  if (numbers.size() != 1) return std::nullopt;
  return numbers.front();
}

namespace {
const Hashids& record_uid_hashids() {
  static const Hashids h = Hashids::create(record_uid_options()).value();
  return h;
}
}  // namespace

std::string record_uid(std::int64_t scheme_account_id) {
  if (scheme_account_id < 0) return {};
  return record_uid_hashids().encode(static_cast<std::uint64_t>(scheme_account_id));
}

std::optional<std::int64_t> decode_record_uid(std::string_view uid) {
  const auto n = record_uid_hashids().decode_one(uid);
  if (!n || *n > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<std::int64_t>(*n);
}

}  // namespace midas_api::crypto
