// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/expected.hpp"

/** RSA callback signatures (the original's soteria `rsa.RSA` security type): RSASSA-PKCS1-v1_5
 *  with SHA-256 over `body + str(timestamp)`, the signature sent base64-encoded in
 *  `Authorization: Signature <base64>`, the timestamp in `X-REQ-TIMESTAMP`. Checking the age of
 *  the timestamp (120 s) and parsing the headers is the HTTP layer's job. */
namespace midas_api::crypto {

/// The outcome of a signature check; `reason` says why it is not valid (never secret).
struct SignatureCheck {
  bool valid = false;
  std::string reason{};
};

/// A parsed RSA public key. Cheap to copy; `verify` may be called from many threads at once.
class RsaPublicKey {
 public:
  /// Parses a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) or "RSA PUBLIC KEY" (PKCS#1);
  /// ErrorKind::bad_key if it is not one or not RSA.
  [[nodiscard]] static Expected<RsaPublicKey> from_pem(std::string_view pem);

  /// Verifies `signature_base64` over body + decimal timestamp. Bad base64 or a wrong signature
  /// give valid=false with a reason.
  [[nodiscard]] SignatureCheck verify(std::string_view body, std::int64_t timestamp,
                                      std::string_view signature_base64) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_{};
};

/// `RsaPublicKey::from_pem(public_key_pem)` then `verify`; a bad key gives valid=false with the
/// reason "bad public key: ...".
[[nodiscard]] SignatureCheck verify_signature(std::string_view public_key_pem,
                                              std::string_view body, std::int64_t timestamp,
                                              std::string_view signature_base64);

/** The base64 signature a merchant sends: RSASSA-PKCS1-v1_5 SHA-256 over body + decimal
 *  timestamp with a PEM private key (PKCS#8 or PKCS#1). For the mock merchant and tests. */
[[nodiscard]] Expected<std::string> sign_body(std::string_view private_key_pem,
                                              std::string_view body, std::int64_t timestamp);

/// A freshly generated RSA key pair, both halves PEM-encoded.
struct RsaKeyPair {
  std::string private_key_pem{};  ///< PKCS#8 "PRIVATE KEY".
  std::string public_key_pem{};   ///< SubjectPublicKeyInfo "PUBLIC KEY".
};

/// Generates an RSA key pair (`bits` >= 1024, else ErrorKind::bad_argument). For tests and the
/// mock merchant's default key; 2048 bits take about 0.1 s.
[[nodiscard]] Expected<RsaKeyPair> generate_rsa_key_pair(int bits = 2048);

}  // namespace midas_api::crypto
