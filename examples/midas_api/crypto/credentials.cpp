// SPDX-License-Identifier: MIT
#include "crypto/credentials.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <memory>

#include "crypto/base64.hpp"

namespace midas_api::crypto {
namespace {

constexpr std::size_t kIvSize = 16;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

using Key = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Key derive_key(std::string_view raw_key) {
  Key key{};
  SHA256(reinterpret_cast<const unsigned char*>(raw_key.data()), raw_key.size(), key.data());
  return key;
}

Error openssl_error(const char* what) {
  return Error{ErrorKind::crypto_failure, std::string("OpenSSL failed: ") + what};
}

/// AES-256-CBC without OpenSSL's padding over `input` (a multiple of 16 bytes long).
Expected<std::string> aes_cbc(bool encrypt, const Key& key, const Iv& iv, std::string_view input) {
  CipherCtx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) return openssl_error("EVP_CIPHER_CTX_new");
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, key.data(), iv.data(),
                        encrypt ? 1 : 0) != 1) {
    return openssl_error("EVP_CipherInit_ex");
  }
  if (EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return openssl_error("EVP_CIPHER_CTX_set_padding");
  }
  std::string out(input.size() + kIvSize, '\0');
  auto* out_bytes = reinterpret_cast<unsigned char*>(out.data());
  // EVP lengths are int; credentials are far below 2 GB, and larger input is refused.
  if (input.size() > static_cast<std::size_t>(INT32_MAX / 2)) {
    return Error{ErrorKind::bad_argument, "input too large"};
  }
  int written = 0;
  if (EVP_CipherUpdate(ctx.get(), out_bytes, &written,
                       reinterpret_cast<const unsigned char*>(input.data()),
                       static_cast<int>(input.size())) != 1) {
    return openssl_error("EVP_CipherUpdate");
  }
  int final_written = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out_bytes + written, &final_written) != 1) {
    return openssl_error("EVP_CipherFinal_ex");
  }
  out.resize(static_cast<std::size_t>(written) + static_cast<std::size_t>(final_written));
  return out;
}

}  // namespace

Expected<std::string> encrypt_text(std::string_view plaintext, std::string_view raw_key,
                                   std::optional<Iv> iv) {
  Iv chosen{};
  if (iv) {
    chosen = *iv;
  } else if (RAND_bytes(chosen.data(), static_cast<int>(chosen.size())) != 1) {
    return openssl_error("RAND_bytes");
  }
  const std::size_t pad = kCredentialsPadBlock - plaintext.size() % kCredentialsPadBlock;
  std::string padded(plaintext);
  padded.append(pad, static_cast<char>(pad));
  auto cipher = aes_cbc(true, derive_key(raw_key), chosen, padded);
  if (!cipher) return cipher.error();
  std::string blob(reinterpret_cast<const char*>(chosen.data()), chosen.size());
  blob += *cipher;
  return base64_encode(blob);
}

Expected<std::string> encrypt_credentials(const nlohmann::json& credentials,
                                          std::string_view raw_key, std::optional<Iv> iv) {
  if (!credentials.is_object()) {
    return Error{ErrorKind::not_object, "credentials must be a JSON object"};
  }
  std::string text;
  try {
    text =
        credentials.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    return Error{ErrorKind::not_utf8, "credentials contain a string that is not valid UTF-8"};
  }
  return encrypt_text(text, raw_key, iv);
}

Expected<std::string> decrypt_text(std::string_view base64_text, std::string_view raw_key) {
  if (base64_text.empty()) return Error{ErrorKind::empty_input, "credentials are empty"};
  auto blob = base64_decode(base64_text);
  if (!blob) return Error{blob.error().kind, "credentials are not " + blob.error().message};
  const std::string& bytes = *blob;
  if (bytes.size() < kIvSize + kCredentialsPadBlock) {
    return Error{ErrorKind::too_short,
                 "credentials are too short: " + std::to_string(bytes.size()) +
                     " bytes, at least 48 (16 IV + 32) expected"};
  }
  const std::size_t cipher_size = bytes.size() - kIvSize;
  if (cipher_size % kCredentialsPadBlock != 0) {
    return Error{ErrorKind::not_block_aligned, "credentials ciphertext is " +
                                                   std::to_string(cipher_size) +
                                                   " bytes, not a multiple of 32"};
  }
  Iv iv{};
  for (std::size_t i = 0; i < kIvSize; ++i) iv[i] = static_cast<std::uint8_t>(bytes[i]);
  auto plain = aes_cbc(false, derive_key(raw_key), iv, std::string_view(bytes).substr(kIvSize));
  if (!plain) return plain.error();
  std::string& text = *plain;
  const auto n = static_cast<unsigned char>(text.back());
  bool padding_ok = n >= 1 && n <= kCredentialsPadBlock;
  for (std::size_t i = 0; padding_ok && i < n; ++i) {
    padding_ok = static_cast<unsigned char>(text[text.size() - 1 - i]) == n;
  }
  if (!padding_ok) {
    return Error{ErrorKind::bad_padding,
                 "credentials could not be decrypted (bad padding: wrong key or corrupted data)"};
  }
  text.resize(text.size() - n);
  return std::move(text);
}

Expected<nlohmann::json> decrypt_credentials(std::string_view base64_text,
                                             std::string_view raw_key) {
  auto text = decrypt_text(base64_text, raw_key);
  if (!text) return text.error();
  if (!is_valid_utf8(*text)) {
    return Error{ErrorKind::not_utf8, "decrypted credentials are not valid UTF-8"};
  }
  auto parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Error{ErrorKind::not_json, "decrypted credentials are not valid JSON"};
  }
  if (!parsed.is_object()) {
    return Error{ErrorKind::not_object, "decrypted credentials are JSON but not an object"};
  }
  return parsed;
}

bool is_valid_utf8(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;  // continuation byte first, overlong 2-byte lead (C0, C1), or > F4
    }
    if (text.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0u) != 0x80u) return false;
      cp = cp << 6 | (cc & 0x3Fu);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000)) return false;  // overlong
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;                                // surrogate
    if (cp > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

std::size_t utf8_length(std::string_view text) noexcept {
  std::size_t n = 0;
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0u) != 0x80u) ++n;
  }
  return n;
}

}  // namespace midas_api::crypto
