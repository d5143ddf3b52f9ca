// SPDX-License-Identifier: MIT
#include "signer.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <limits>
#include <stdexcept>
#include <vector>

namespace mock_merchant {

namespace {

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};

std::string base64(const std::vector<unsigned char>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

struct Signer::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

Signer::Signer(std::string_view private_key_pem) : key_(std::make_unique<Key>()) {
  if (private_key_pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::runtime_error("private key: too large");
  }
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  if (!bio) throw std::runtime_error("private key: out of memory");
  key_->pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key_->pkey == nullptr) throw std::runtime_error("private key: not a PEM private key");
  if (EVP_PKEY_base_id(key_->pkey) != EVP_PKEY_RSA) {
    throw std::runtime_error("private key: not an RSA key");
  }
}

Signer::~Signer() = default;

std::string Signer::sign_base64(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::runtime_error("sign: out of memory");
  // RSA keys default to PKCS#1 v1.5 padding.
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey) != 1 ||
      EVP_DigestSignUpdate(ctx.get(), data.data(), data.size()) != 1) {
    throw std::runtime_error("sign: EVP_DigestSign failed");
  }
  std::size_t len = 0;
  if (EVP_DigestSignFinal(ctx.get(), nullptr, &len) != 1) {
    throw std::runtime_error("sign: EVP_DigestSignFinal failed");
  }
  std::vector<unsigned char> sig(len);
  if (EVP_DigestSignFinal(ctx.get(), sig.data(), &len) != 1) {
    throw std::runtime_error("sign: EVP_DigestSignFinal failed");
  }
  sig.resize(len);
  return base64(sig);
}

std::string Signer::sign_callback(std::string_view body, std::int64_t timestamp) const {
  std::string message(body);
  message += std::to_string(timestamp);
  return sign_base64(message);
}

}  // namespace mock_merchant
