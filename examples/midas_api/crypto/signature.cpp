// SPDX-License-Identifier: MIT
#include "crypto/signature.hpp"

#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <climits>
#include <optional>

#include "crypto/base64.hpp"

namespace midas_api::crypto {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};
struct DecoderCtxDeleter {
  void operator()(OSSL_DECODER_CTX* c) const noexcept { OSSL_DECODER_CTX_free(c); }
};
using DecoderCtx = std::unique_ptr<OSSL_DECODER_CTX, DecoderCtxDeleter>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using Bio = std::unique_ptr<BIO, BioDeleter>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

/// The last OpenSSL error of this thread as text (and the queue cleared), for reasons.
std::string take_openssl_error() {
  const unsigned long code = ERR_peek_last_error();
  std::string text = "unknown OpenSSL error";
  if (code != 0) {
    char buf[256] = {};
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  }
  ERR_clear_error();
  return text;
}

Bio memory_bio(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return nullptr;
  return Bio{BIO_new_mem_buf(text.data(), static_cast<int>(text.size()))};
}

std::string signed_text(std::string_view body, std::int64_t timestamp) {
  std::string s(body);
  s += std::to_string(timestamp);
  return s;
}

Expected<Pkey> read_public_key(std::string_view pem) {
  if (pem.empty()) return Error{ErrorKind::bad_key, "empty public key"};
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) {
    return Error{ErrorKind::bad_key, "public key too large"};
  }
  // One decoder for both PEM forms: SubjectPublicKeyInfo ("PUBLIC KEY") and PKCS#1
  // ("RSA PUBLIC KEY").
  EVP_PKEY* raw = nullptr;
  DecoderCtx dctx{OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, "RSA", EVP_PKEY_PUBLIC_KEY,
                                                nullptr, nullptr)};
  if (!dctx) return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  const auto* data = reinterpret_cast<const unsigned char*>(pem.data());
  std::size_t len = pem.size();
  Pkey key;
  if (OSSL_DECODER_from_data(dctx.get(), &data, &len) == 1) key.reset(raw);
  if (!key) return Error{ErrorKind::bad_key, "not a PEM public key: " + take_openssl_error()};
  if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
    return Error{ErrorKind::bad_key, "the public key is not an RSA key"};
  }
  return key;
}

}  // namespace

struct RsaPublicKey::Impl {
  Pkey key;
};

Expected<RsaPublicKey> RsaPublicKey::from_pem(std::string_view pem) {
  auto key = read_public_key(pem);
  if (!key) return key.error();
  RsaPublicKey out;
  out.impl_ = std::make_shared<const Impl>(Impl{std::move(*key)});
  return out;
}

SignatureCheck RsaPublicKey::verify(std::string_view body, std::int64_t timestamp,
                                    std::string_view signature_base64) const {
  if (!impl_) return {false, "no public key"};
  auto signature = base64_decode(signature_base64);
  if (!signature) return {false, "signature is not " + signature.error().message};
  MdCtx ctx{EVP_MD_CTX_new()};
  if (!ctx) return {false, "OpenSSL failed: EVP_MD_CTX_new"};
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, impl_->key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
    return {false, "OpenSSL failed: " + take_openssl_error()};
  }
  const std::string text = signed_text(body, timestamp);
  const int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()), signature->size(),
      reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (rc == 1) return {true, {}};
  ERR_clear_error();
  return {false, "signature does not match the body and timestamp"};
}

SignatureCheck verify_signature(std::string_view public_key_pem, std::string_view body,
                                std::int64_t timestamp, std::string_view signature_base64) {
  auto key = RsaPublicKey::from_pem(public_key_pem);
  if (!key) return {false, "bad public key: " + key.error().message};
  return key->verify(body, timestamp, signature_base64);
}

Expected<std::string> sign_body(std::string_view private_key_pem, std::string_view body,
                                std::int64_t timestamp) {
  Bio bio = memory_bio(private_key_pem);
  if (!bio) return Error{ErrorKind::bad_key, "private key too large"};
  // Reads PKCS#8 and traditional PKCS#1 keys alike; an encrypted key would need a passphrase,
  // which the null callback refuses.
  Pkey key{PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  if (!key) return Error{ErrorKind::bad_key, "not a PEM private key: " + take_openssl_error()};
  if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
    return Error{ErrorKind::bad_key, "the private key is not an RSA key"};
  }
  MdCtx ctx{EVP_MD_CTX_new()};
  if (!ctx) return Error{ErrorKind::crypto_failure, "OpenSSL failed: EVP_MD_CTX_new"};
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
    return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  }
  const std::string text = signed_text(body, timestamp);
  std::size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, reinterpret_cast<const unsigned char*>(text.data()),
                     text.size()) != 1) {
    return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(text.data()), text.size()) != 1) {
    return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  }
  signature.resize(size);
  return base64_encode(signature);
}

Expected<RsaKeyPair> generate_rsa_key_pair(int bits) {
  if (bits < 1024) return Error{ErrorKind::bad_argument, "RSA keys need at least 1024 bits"};
  PkeyCtx ctx{EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr)};
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) <= 0 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  }
  Pkey key{raw};
  const auto to_pem = [&](bool private_half) -> std::optional<std::string> {
    Bio out{BIO_new(BIO_s_mem())};
    if (!out) return std::nullopt;
    const int ok = private_half ? PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), nullptr,
                                                                nullptr, 0, nullptr, nullptr)
                                : PEM_write_bio_PUBKEY(out.get(), key.get());
    if (ok != 1) return std::nullopt;
    char* data = nullptr;
    const long len = BIO_get_mem_data(out.get(), &data);
    if (len <= 0 || data == nullptr) return std::nullopt;
    return std::string(data, static_cast<std::size_t>(len));
  };
  auto private_pem = to_pem(true);
  auto public_pem = to_pem(false);
  if (!private_pem || !public_pem) {
    return Error{ErrorKind::crypto_failure, "OpenSSL failed: " + take_openssl_error()};
  }
  return RsaKeyPair{std::move(*private_pem), std::move(*public_pem)};
}

}  // namespace midas_api::crypto
