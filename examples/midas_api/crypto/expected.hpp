// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <utility>
#include <variant>

/// Result and error types of the Midas API crypto and data helpers (library `midas_api_core`).
namespace midas_api::crypto {

/// What kind of input or environment problem a helper met.
enum class ErrorKind {
  empty_input,        ///< Nothing to decode.
  bad_base64,         ///< Not standard padded base64 (RFC 4648 section 4).
  too_short,          ///< Fewer bytes than an IV and one padded block.
  not_block_aligned,  ///< Ciphertext length not a multiple of the 32-byte padding block.
  bad_padding,        ///< The 32-byte-block padding is not n bytes of value n (1..32).
  not_utf8,           ///< The plaintext is not valid UTF-8.
  not_json,           ///< The plaintext is not JSON.
  not_object,         ///< The JSON is valid but not an object.
  bad_key,            ///< A key or key file is unusable (empty, unreadable, not PEM...).
  bad_argument,       ///< An argument out of its documented range.
  crypto_failure,     ///< OpenSSL failed internally (no randomness, allocation, ...).
  io,                 ///< A file or directory could not be read or found.
  bad_data,           ///< A data file does not have the documented shape.
};

/// A failure with a message fit for a 400 body or a start-up error. Messages never contain a
/// plaintext, a key or a credential: only sizes, positions and the kind of problem.
struct Error {
  ErrorKind kind = ErrorKind::bad_argument;
  std::string message{};
};

/// A `T` or an `Error`. Nothing in this library throws on bad input; `value()` on an error is a
/// programming error and throws `std::bad_variant_access` (check `has_value()` / `operator bool`).
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Expected(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  /// Same as `has_value()`.
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; precondition `has_value()`.
  T& value() & { return std::get<0>(state_); }
  /// The value; precondition `has_value()`.
  const T& value() const& { return std::get<0>(state_); }
  /// The value, moved out; precondition `has_value()`.
  T&& value() && { return std::get<0>(std::move(state_)); }
  /// The value; precondition `has_value()`.
  T& operator*() & { return value(); }
  /// The value; precondition `has_value()`.
  const T& operator*() const& { return value(); }
  /// Member access to the value; precondition `has_value()`.
  T* operator->() { return &value(); }
  /// Member access to the value; precondition `has_value()`.
  const T* operator->() const { return &value(); }

  /// The error; precondition `!has_value()`.
  [[nodiscard]] const Error& error() const& { return std::get<1>(state_); }

 private:
  std::variant<T, Error> state_;
};

}  // namespace midas_api::crypto
