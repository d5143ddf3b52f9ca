// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/expected.hpp"

/** AES credentials, exactly as the original Midas (`app/encryption.py AESCipher`):
 *  AES-256-CBC, key = SHA-256(raw key bytes), plaintext padded to a multiple of 32 bytes with n
 *  bytes of value n (1..32, so a plaintext whose length is already a multiple of 32 gets a full
 *  32-byte pad), output base64(iv16 || ciphertext). OpenSSL's own PKCS#7 padding (block 16) is
 *  disabled; the 32-byte padding is done here. All functions are thread-safe. */
namespace midas_api::crypto {

/// A 16-byte AES-CBC initialisation vector.
using Iv = std::array<std::uint8_t, 16>;

/// The padding block of the credential format (not the AES block, which is 16).
inline constexpr std::size_t kCredentialsPadBlock = 32;

/** Encrypts `plaintext` bytes as-is. `iv` is for tests and vectors; without it 16 random bytes
 *  come from OpenSSL's RAND_bytes (ErrorKind::crypto_failure if that fails). Any raw key is
 *  accepted, the empty one included: the service checks its AES_KEY setting itself. */
[[nodiscard]] Expected<std::string> encrypt_text(std::string_view plaintext,
                                                 std::string_view raw_key,
                                                 std::optional<Iv> iv = std::nullopt);

/** Encrypts a credentials object: serialised as compact JSON with non-ASCII characters escaped
 *  (`\u00eb`), then `encrypt_text`. ErrorKind::not_object if `credentials` is not an object,
 *  ErrorKind::not_utf8 if one of its strings is not valid UTF-8. */
[[nodiscard]] Expected<std::string> encrypt_credentials(const nlohmann::json& credentials,
                                                        std::string_view raw_key,
                                                        std::optional<Iv> iv = std::nullopt);

/** Decrypts base64(iv || ciphertext) to the plaintext bytes, checking in this order:
 *  empty input (empty_input), strict base64 (bad_base64; the caller replaces ' ' with '+' first,
 *  see `spaces_to_plus`), at least 16 + 32 bytes (too_short), ciphertext length a multiple of 32
 *  (not_block_aligned), padding n bytes of value n with 1 <= n <= 32 (bad_padding: with the
 *  wrong key this is what usually fails). Unlike the original, which unpadded by the last byte
 *  without checking, a bad pad is an error. */
[[nodiscard]] Expected<std::string> decrypt_text(std::string_view base64_text,
                                                 std::string_view raw_key);

/** `decrypt_text`, then the plaintext must be UTF-8 (not_utf8), JSON (not_json) and a JSON
 *  object (not_object). Returns the object. Messages name the problem, never the plaintext. */
[[nodiscard]] Expected<nlohmann::json> decrypt_credentials(std::string_view base64_text,
                                                           std::string_view raw_key);

/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

/// Number of code points in well-formed UTF-8 `text` (Python's `len` of the decoded string).
[[nodiscard]] std::size_t utf8_length(std::string_view text) noexcept;

}  // namespace midas_api::crypto
