// SPDX-License-Identifier: MIT
#pragma once
/// RSASSA-PKCS1-v1_5 SHA-256 signatures for the merchant's join callbacks (OpenSSL EVP).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mock_merchant {

/// Holds one RSA private key. sign() is thread-safe (each call uses its own digest context).
class Signer {
 public:
  /// Reads a PEM private key; throws std::runtime_error when it is not one.
  explicit Signer(std::string_view private_key_pem);
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  /// base64(sign(data)), no line breaks.
  [[nodiscard]] std::string sign_base64(std::string_view data) const;
  /// The callback signature: over `body + str(timestamp)`, as the Midas callback check expects.
  [[nodiscard]] std::string sign_callback(std::string_view body, std::int64_t timestamp) const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
};

}  // namespace mock_merchant
