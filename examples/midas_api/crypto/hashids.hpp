// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/expected.hpp"

/// Hashids (https://hashids.org, v1 algorithm, as Python's `hashids` 1.x) for `record_uid`.
namespace midas_api::crypto {

/// The hashids default alphabet.
inline constexpr std::string_view kHashidsDefaultAlphabet =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890";

/// Settings of a Hashids encoder.
struct HashidsOptions {
  std::string salt{};          ///< Any bytes (used byte by byte, as Python does for ASCII salts).
  std::size_t min_length = 0;  ///< Encodings are padded to at least this many characters.
  std::string alphabet{kHashidsDefaultAlphabet};  ///< ASCII, >= 16 unique characters, no space.
};

/// The settings midas-api uses for `record_uid` (the vectors' salt, min length 32, a-z0-9).
[[nodiscard]] HashidsOptions record_uid_options();

/** Encodes non-negative integers to short strings and back. Immutable after construction, so
 *  one instance may be shared by threads. */
class Hashids {
 public:
  /// Builds an encoder; ErrorKind::bad_argument if the alphabet has fewer than 16 unique
  /// characters, a space, or a non-ASCII byte.
  [[nodiscard]] static Expected<Hashids> create(HashidsOptions options);

  /// The hashid of one number.
  [[nodiscard]] std::string encode(std::uint64_t number) const;
  /// The hashid of several numbers; "" for an empty list.
  [[nodiscard]] std::string encode(std::span<const std::uint64_t> numbers) const;

  /** The numbers of `hashid`, or an empty vector when it is not a hashid of this encoder: a
   *  character outside the alphabet, a number that overflows 64 bits, or a string that does not
   *  re-encode to itself (garbage, another salt, a changed character). Never throws. */
  [[nodiscard]] std::vector<std::uint64_t> decode(std::string_view hashid) const;

  /// `decode`, when it gives exactly one number.
  [[nodiscard]] std::optional<std::uint64_t> decode_one(std::string_view hashid) const;

 private:
  Hashids() = default;
  std::string salt_{};
  std::size_t min_length_ = 0;
  std::string alphabet_{};
  std::string separators_{};
  std::string guards_{};
};

/// `record_uid` of a scheme account: its hashid with `record_uid_options()`; "" if negative.
[[nodiscard]] std::string record_uid(std::int64_t scheme_account_id);

/// The scheme account id of a `record_uid`, or nullopt when it is not one (or exceeds int64).
[[nodiscard]] std::optional<std::int64_t> decode_record_uid(std::string_view record_uid);

}  // namespace midas_api::crypto
