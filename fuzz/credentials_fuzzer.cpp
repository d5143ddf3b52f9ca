// SPDX-License-Identifier: MIT
// What the Midas API decodes from requests: AES credentials (base64, padding, JSON), record uids
// (hashids) and merchant callback signatures. Each must answer a value or an error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "crypto/base64.hpp"
#include "crypto/credentials.hpp"
#include "crypto/hashids.hpp"
#include "crypto/signature.hpp"

namespace {

// The mock merchant's public key is not needed: a generated one is as good for garbage input.
const std::string& public_key() {
  static const std::string pem = [] {
    auto pair = midas_api::crypto::generate_rsa_key_pair(1024);
    return pair ? pair->public_key_pem : std::string{};
  }();
  return pem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  auto creds = midas_api::crypto::decrypt_credentials(text, "fuzz-key");
  if (creds && !creds->is_object()) __builtin_trap();  // decrypted credentials are an object
  (void)midas_api::crypto::decrypt_text(text, "fuzz-key");
  (void)midas_api::crypto::spaces_to_plus(text);
  (void)midas_api::crypto::base64_decode(text);
  if (auto id = midas_api::crypto::decode_record_uid(text); id && *id >= 0) {
    // A decoded id encodes back to a record uid that decodes to the same id.
    if (midas_api::crypto::decode_record_uid(midas_api::crypto::record_uid(*id)) != id) {
      __builtin_trap();
    }
  }
  const std::size_t half = size / 2;
  const auto check = midas_api::crypto::verify_signature(public_key(), text.substr(0, half),
                                                         1700000000, text.substr(half));
  if (check.valid) __builtin_trap();                                   // garbage never verifies
  (void)midas_api::crypto::verify_signature(text, "body", 1, "c2ln");  // garbage as the key
  return 0;
}
