// SPDX-License-Identifier: MIT
// The Midas API crypto and data helpers, proven against every vector of vectors.json (the
// reference next to the checkout, else the committed copy in examples/midas_api/tests/data).
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "crypto/base64.hpp"
#include "crypto/credentials.hpp"
#include "crypto/hashids.hpp"
#include "crypto/labels.hpp"
#include "crypto/reference_data.hpp"
#include "crypto/signature.hpp"
#include "crypto/transactions.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace midas_api::crypto;  // NOLINT

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The vectors file this run uses: the shared reference if present, else the committed copy.
fs::path vectors_path() {
  const fs::path shared = MIDAS_API_SHARED_VECTORS;
  const fs::path committed = MIDAS_API_COMMITTED_VECTORS;
  if (fs::is_regular_file(shared)) return shared;
  if (fs::is_regular_file(committed)) return committed;
  return {};
}

/// vectors.json, parsed once; a test that needs it fails (never skips) when it is missing.
const json& vectors() {
  static const json v = [] {
    const fs::path p = vectors_path();
    if (p.empty()) return json();
    return json::parse(read_file(p), nullptr, false);
  }();
  return v;
}

const json& section(const char* name) {
  static const json empty = json::object();
  REQUIRE_MESSAGE(vectors().is_object(), "vectors.json not found or not JSON: looked at "
                                             << MIDAS_API_SHARED_VECTORS << " and "
                                             << MIDAS_API_COMMITTED_VECTORS);
  REQUIRE_MESSAGE(vectors().contains(name), "vectors.json has no section " << name);
  MESSAGE("vectors used: " << vectors_path().string());
  return vectors().contains(name) ? vectors()[name] : empty;
}

std::string bytes_of_base64(std::string_view b64) {
  auto r = base64_decode(b64);
  REQUIRE(r);
  return *r;
}

Iv iv_of(std::string_view ciphertext_b64) {
  const std::string blob = bytes_of_base64(ciphertext_b64);
  REQUIRE(blob.size() >= 16);
  Iv iv{};
  for (std::size_t i = 0; i < 16; ++i) iv[i] = static_cast<std::uint8_t>(blob[i]);
  return iv;
}

/// Raw AES-256-CBC decryption with OpenSSL, no padding removed: an independent look at the pad.
std::string raw_decrypt(std::string_view ciphertext_b64, std::string_view raw_key) {
  const std::string blob = bytes_of_base64(ciphertext_b64);
  std::array<unsigned char, 32> key{};
  unsigned int key_len = 0;
  REQUIRE(EVP_Digest(raw_key.data(), raw_key.size(), key.data(), &key_len, EVP_sha256(), nullptr) ==
          1);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  REQUIRE(ctx != nullptr);
  const auto* bytes = reinterpret_cast<const unsigned char*>(blob.data());
  std::string out(blob.size(), '\0');
  int n1 = 0;
  int n2 = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), nullptr, key.data(), bytes) == 1 &&
      EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n1, bytes + 16,
                        static_cast<int>(blob.size() - 16)) == 1 &&
      EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + n1, &n2) == 1;
  EVP_CIPHER_CTX_free(ctx);
  REQUIRE(ok);
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

/// base64(iv || first `blocks` 16-byte blocks of the ciphertext of `b64`): a CBC prefix.
std::string cbc_prefix(std::string_view b64, std::size_t blocks) {
  const std::string blob = bytes_of_base64(b64);
  REQUIRE(blob.size() >= 16 + 16 * blocks);
  return base64_encode(std::string_view(blob).substr(0, 16 + 16 * blocks));
}

constexpr std::string_view kKey = "test-key-not-secret";

/// Sets or clears an environment variable for the scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvGuard() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_{};
};

/// A fresh empty directory under the temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "midas-api-crypto-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

const fs::path kDataDir = MIDAS_API_DATA_SOURCE_DIR;

}  // namespace

// --- the vectors file
// -----------------------------------------------------------------------------

TEST_CASE("the vectors file is found, and the committed copy matches the reference") {
  const fs::path p = vectors_path();
  REQUIRE_MESSAGE(!p.empty(), "neither " << MIDAS_API_SHARED_VECTORS << " nor "
                                         << MIDAS_API_COMMITTED_VECTORS << " exists");
  MESSAGE("vectors used: " << p.string());
  CHECK(vectors().is_object());
  const fs::path shared = MIDAS_API_SHARED_VECTORS;
  const fs::path committed = MIDAS_API_COMMITTED_VECTORS;
  REQUIRE_MESSAGE(fs::is_regular_file(committed), "the committed copy is missing: " << committed);
  if (fs::is_regular_file(shared)) {
    CHECK_MESSAGE(read_file(shared) == read_file(committed),
                  "examples/midas_api/tests/data/vectors.json differs from the reference: copy it");
  }
}

TEST_CASE("the shipped data files are byte-identical to the reference when it is present") {
  const fs::path reference = fs::path(MIDAS_API_SHARED_VECTORS).parent_path();
  for (const char* name : {"mock_users.json", "mock_cards.json", "errors.json"}) {
    CAPTURE(name);
    REQUIRE(fs::is_regular_file(kDataDir / name));
    if (fs::is_regular_file(reference / name)) {
      CHECK(read_file(reference / name) == read_file(kDataDir / name));
    }
  }
}

// --- AES credentials
// ------------------------------------------------------------------------------

TEST_CASE("every AES vector decrypts to its plaintext and re-encrypts to its ciphertext") {
  const json& cases = section("aes_credentials");
  REQUIRE(cases.is_array());
  REQUIRE(cases.size() >= 1);
  for (const auto& v : cases) {
    const auto key = v.at("key").get<std::string>();
    const auto plaintext = v.at("plaintext").get<std::string>();
    const auto ciphertext = v.at("ciphertext").get<std::string>();
    CAPTURE(key);
    auto text = decrypt_text(ciphertext, key);
    REQUIRE_MESSAGE(text, text.error().message);
    CHECK(*text == plaintext);

    auto object = decrypt_credentials(ciphertext, key);
    REQUIRE_MESSAGE(object, object.error().message);
    CHECK(*object == json::parse(plaintext));

    auto again = encrypt_text(plaintext, key, iv_of(ciphertext));
    REQUIRE(again);
    CHECK(*again == ciphertext);
  }
}

TEST_CASE("an AES vector decrypted with another key is an error, never a credential") {
  for (const auto& v : section("aes_credentials")) {
    auto r = decrypt_credentials(v.at("ciphertext").get<std::string>(), "some-other-key");
    CHECK_FALSE(r);
  }
}

TEST_CASE("credentials round-trip through encrypt_credentials and decrypt_credentials") {
  const json creds = {{"card_number", "6332040000000000000"},
                      {"last_name", "Zo\u00eb O'Brien"},
                      {"postcode", "rg0 0aa"},
                      {"consents", json::array({{{"id", 1}, {"value", true}}})}};
  auto a = encrypt_credentials(creds, kKey);
  auto b = encrypt_credentials(creds, kKey);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);  // a random IV each time
  auto back = decrypt_credentials(*a, kKey);
  REQUIRE_MESSAGE(back, back.error().message);
  CHECK(*back == creds);
  // The serialised form escapes non-ASCII characters, as Python's json.dumps does.
  auto text = decrypt_text(*a, kKey);
  REQUIRE(text);
  CHECK(text->find("\\u00eb") != std::string::npos);

  const Iv zero{};
  auto fixed1 = encrypt_credentials(creds, kKey, zero);
  auto fixed2 = encrypt_credentials(creds, kKey, zero);
  REQUIRE(fixed1);
  REQUIRE(fixed2);
  CHECK(*fixed1 == *fixed2);
}

TEST_CASE("padding is to a multiple of 32 with n bytes of value n, a full block when aligned") {
  const Iv iv{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  for (std::size_t len : {0U, 1U, 15U, 16U, 17U, 31U, 32U, 33U, 63U, 64U, 100U}) {
    CAPTURE(len);
    const std::string plain(len, 'x');
    auto c = encrypt_text(plain, kKey, iv);
    REQUIRE(c);
    const std::size_t pad = 32 - len % 32;
    CHECK(bytes_of_base64(*c).size() == 16 + len + pad);
    const std::string raw = raw_decrypt(*c, kKey);
    REQUIRE(raw.size() == len + pad);
    CHECK(raw.substr(0, len) == plain);
    CHECK(raw.substr(len) == std::string(pad, static_cast<char>(pad)));
    auto back = decrypt_text(*c, kKey);
    REQUIRE(back);
    CHECK(*back == plain);
  }
}

TEST_CASE("each kind of bad credentials is a distinct, clear error") {
  const Iv iv{};
  SUBCASE("empty") {
    auto r = decrypt_credentials("", kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::empty_input);
  }
  SUBCASE("not base64") {
    auto r = decrypt_credentials("abc$defg", kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::bad_base64);
    CHECK(r.error().message.find("position 3") != std::string::npos);
  }
  SUBCASE("a '+' turned into a space is rejected, and accepted after spaces_to_plus") {
    const auto& v = section("aes_credentials").at(0);
    const auto ciphertext = v.at("ciphertext").get<std::string>();
    REQUIRE(ciphertext.find('+') != std::string::npos);
    std::string mangled = ciphertext;
    for (auto& c : mangled) {
      if (c == '+') c = ' ';
    }
    auto r = decrypt_credentials(mangled, v.at("key").get<std::string>());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::bad_base64);
    CHECK(r.error().message.find("'+'") != std::string::npos);
    auto fixed = decrypt_credentials(spaces_to_plus(mangled), v.at("key").get<std::string>());
    REQUIRE(fixed);
    CHECK(*fixed == json::parse(v.at("plaintext").get<std::string>()));
  }
  SUBCASE("too short: only an IV, or an IV and half a padded block") {
    for (std::size_t n : {1U, 16U, 32U, 47U}) {
      auto r = decrypt_credentials(base64_encode(std::string(n, 'a')), kKey);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::too_short);
    }
  }
  SUBCASE("ciphertext not a multiple of the 32-byte block") {
    for (std::size_t n : {16U + 33U, 16U + 48U, 16U + 65U}) {
      auto r = decrypt_credentials(base64_encode(std::string(n, 'a')), kKey);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::not_block_aligned);
    }
  }
  SUBCASE("bad padding") {
    // A CBC prefix of a longer encryption: its last block is plaintext, not padding.
    for (char last : {'\0', '\x21', '\xff'}) {
      const std::string plain = std::string(31, 'p') + last + "tail";
      auto c = encrypt_text(plain, kKey, iv);
      REQUIRE(c);
      auto r = decrypt_text(cbc_prefix(*c, 2), kKey);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::bad_padding);
    }
    // Right last byte, wrong bytes before it.
    const std::string plain = std::string(29, 'p') + "\x04\x03\x03" + "tail";
    auto c = encrypt_text(plain, kKey, iv);
    REQUIRE(c);
    auto r = decrypt_text(cbc_prefix(*c, 2), kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::bad_padding);
    // The same prefix trick with a valid pad decrypts (the check is not over-strict).
    const std::string good = std::string(29, 'p') + "\x03\x03\x03" + "tail";
    auto c2 = encrypt_text(good, kKey, iv);
    REQUIRE(c2);
    auto r2 = decrypt_text(cbc_prefix(*c2, 2), kKey);
    REQUIRE(r2);
    CHECK(*r2 == std::string(29, 'p'));
  }
  SUBCASE("not UTF-8") {
    auto c = encrypt_text("{\"last_name\": \"\xff\xfe\"}", kKey, iv);
    REQUIRE(c);
    auto r = decrypt_credentials(*c, kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::not_utf8);
  }
  SUBCASE("not JSON, and the plaintext is not in the message") {
    auto c = encrypt_text("SECRET-PLAINTEXT card 6332040000000000000", kKey, iv);
    REQUIRE(c);
    auto r = decrypt_credentials(*c, kKey);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::not_json);
    CHECK(r.error().message.find("SECRET") == std::string::npos);
    CHECK(r.error().message.find("6332040000000000000") == std::string::npos);
  }
  SUBCASE("JSON but not an object") {
    for (const char* text : {"[1, 2]", "\"card\"", "42", "null"}) {
      auto c = encrypt_text(text, kKey, iv);
      REQUIRE(c);
      auto r = decrypt_credentials(*c, kKey);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::not_object);
    }
  }
  SUBCASE("encrypt_credentials refuses a non-object and invalid UTF-8") {
    auto a = encrypt_credentials(json::array({1}), kKey);
    REQUIRE_FALSE(a);
    CHECK(a.error().kind == ErrorKind::not_object);
    auto b = encrypt_credentials(json{{"last_name", std::string("\xc3\x28")}}, kKey);
    REQUIRE_FALSE(b);
    CHECK(b.error().kind == ErrorKind::not_utf8);
  }
}

TEST_CASE("truncated and extended vector ciphertexts are errors, not crashes") {
  for (const auto& v : section("aes_credentials")) {
    const auto key = v.at("key").get<std::string>();
    const std::string blob = bytes_of_base64(v.at("ciphertext").get<std::string>());
    for (std::size_t cut = 1; cut < blob.size(); cut += 7) {
      auto r = decrypt_credentials(base64_encode(std::string_view(blob).substr(0, cut)), key);
      CHECK_FALSE(r);
    }
    auto longer = decrypt_credentials(base64_encode(blob + std::string(32, 'z')), key);
    CHECK_FALSE(longer);
  }
}

// --- base64 and UTF-8
// -----------------------------------------------------------------------------

TEST_CASE("base64 follows RFC 4648 and rejects malformed input") {
  const std::pair<const char*, const char*> rfc[] = {{"f", "Zg=="},         {"fo", "Zm8="},
                                                     {"foo", "Zm9v"},       {"foob", "Zm9vYg=="},
                                                     {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : rfc) {
    CHECK(base64_encode(plain) == encoded);
    auto d = base64_decode(encoded);
    REQUIRE(d);
    CHECK(*d == plain);
  }
  CHECK(base64_encode("") == "");
  CHECK(base64_encode(std::string("\xfb\xff", 2)) == "+/8=");
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zg==Zg==", "=Zg=", "Zm9v\n", "Zm-_", "Zm 9"}) {
    CAPTURE(bad);
    auto d = base64_decode(bad);
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::bad_base64);
  }
  CHECK(spaces_to_plus("a b  c") == "a+b++c");
}

TEST_CASE("UTF-8 validation and length count code points as Python does") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("\xc2\xa3"));                // £
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));        // U+1F600
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  CHECK_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xc2"));              // truncated
  CHECK_FALSE(is_valid_utf8("\x80"));              // lone continuation
  CHECK(utf8_length("\xc2\xa3"
                    "1234567.00") == 11);
}

// --- transaction hashes, labels, dates
// ------------------------------------------------------------

TEST_CASE("every transaction-hash vector") {
  const json& cases = section("transaction_hashes");
  REQUIRE(cases.is_array());
  REQUIRE(cases.size() >= 1);
  for (const auto& v : cases) {
    const auto id = v.at("scheme_account_id").get<std::int64_t>();
    CAPTURE(id);
    std::vector<TransactionText> txs;
    for (const auto& t : v.at("transactions")) {
      TransactionText tx;
      tx.date = t.at("date").get<std::string>();
      tx.description = t.at("description").get<std::string>();
      tx.points = t.at("points").get<std::string>();
      if (!t.at("location").is_null()) tx.location = t.at("location").get<std::string>();
      txs.push_back(tx);
    }
    CHECK(hash_transactions(txs, id) == v.at("hashes").get<std::vector<std::string>>());
  }
}

TEST_CASE("the hash string of ORIGINAL_NOTES' example, and the occurrence index") {
  CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(md5_hex("2018-07-01T14:24:15+00:00Test transaction: 1 item20.7110") ==
        "3d5521d21b0525ce51dfa19a41adc20e");
  const TransactionText t{"2018-07-01T14:24:15+00:00", "Test transaction: 1 item", "20.71", {}};
  const std::vector<TransactionText> three{t, t, t};
  const auto h = hash_transactions(three, 1);
  REQUIRE(h.size() == 3);
  CHECK(h[0] == "3d5521d21b0525ce51dfa19a41adc20e");
  CHECK(h[1] == md5_hex("2018-07-01T14:24:15+00:00Test transaction: 1 item20.7111"));
  CHECK(h[2] == md5_hex("2018-07-01T14:24:15+00:00Test transaction: 1 item20.7112"));
}

TEST_CASE("every minify_number vector") {
  const json& cases = section("minify_number");
  REQUIRE(cases.is_array());
  REQUIRE(cases.size() >= 1);
  for (const auto& v : cases) {
    const auto n = v.at("n").get<std::int64_t>();
    CAPTURE(n);
    CHECK(minify_number(n) == v.at("label").get<std::string>());
  }
}

TEST_CASE("points_label truncates, and minify_number stops at T") {
  CHECK(points_label(20.10) == "20");
  CHECK(points_label(9999.99) == "9999");
  CHECK(points_label(123456.0) == "123k");
  CHECK(points_label(-5.5) == "-5");
  CHECK(points_label(std::numeric_limits<double>::quiet_NaN()) == "0");
  CHECK(minify_number(-20000) == "-20000");
  CHECK(minify_number(1000999) == "1000k");  // 1000 / 1000 is not > 1
  CHECK(minify_number(1001000) == "1M");     // 1001 / 1000 is
  CHECK(minify_number(1000000000000LL) == "1000B");
  CHECK(minify_number(10000000000000000LL) == "10000T");
  CHECK(minify_number(INT64_MAX) == "9223372T");
}

TEST_CASE("value labels are £ with two decimals, and longer than 11 characters become Reward") {
  CHECK(value_label(1480) == "£1480.00");
  CHECK(value_label(20.1) == "£20.10");
  CHECK(value_label(380.01) == "£380.01");
  CHECK(value_label(0) == "£0.00");
  CHECK(value_label(-0.0) == "£0.00");
  CHECK(value_label(-100.01) == "£-100.01");
  CHECK(value_label(1234567) == "£1234567.00");  // 11 characters (12 bytes): kept
  CHECK(value_label(12345678) == "Reward");      // 12 characters
  CHECK(value_label(std::numeric_limits<double>::infinity()) == "Reward");
  CHECK(cap_value_label("") == "");
  CHECK(cap_value_label("12345678901") == "12345678901");
  CHECK(cap_value_label("123456789012") == "Reward");
}

TEST_CASE("dates format as the original and parse back") {
  using namespace std::chrono;
  const sys_seconds t = sys_days{year{2018} / 7 / 1} + hours{14} + minutes{24} + seconds{15};
  CHECK(iso_datetime(t) == "2018-07-01T14:24:15+00:00");
  CHECK(response_datetime(t) == "2018-07-01 14:24:15+00:00");
  CHECK(parse_iso_datetime("2018-07-01T14:24:15+00:00") == t);
  CHECK(parse_iso_datetime("2018-07-01 14:24:15Z") == t);
  CHECK(parse_iso_datetime("2018-07-01T15:24:15.123456+01:00") == t);
  CHECK(parse_iso_datetime("2018-07-01T09:54:15-04:30") == t);
  for (const char* bad : {"", "2018-07-01", "2018-07-01T14:24:15", "2018-02-30T00:00:00Z",
                          "2018-07-01T24:00:00Z", "2018-07-01T14:24:15+0000",
                          "2018-07-01T14:24:15Zx", "2018-07-01X14:24:15Z", "2018-7-01T14:24:15Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_iso_datetime(bad));
  }
}

// --- hashids
// --------------------------------------------------------------------------------------

TEST_CASE("every hashids vector encodes and decodes") {
  const json& h = section("hashids");
  HashidsOptions options;
  options.salt = h.at("salt").get<std::string>();
  options.min_length = h.at("min_length").get<std::size_t>();
  options.alphabet = h.at("alphabet").get<std::string>();
  auto ids = Hashids::create(options);
  REQUIRE(ids);
  REQUIRE(h.at("cases").size() >= 1);
  for (const auto& c : h.at("cases")) {
    const auto id = c.at("id").get<std::uint64_t>();
    const auto hashid = c.at("hashid").get<std::string>();
    CAPTURE(id);
    CHECK(ids->encode(id) == hashid);
    CHECK(ids->decode_one(hashid) == id);
    // record_uid uses the same settings.
    CHECK(record_uid(static_cast<std::int64_t>(id)) == hashid);
    CHECK(decode_record_uid(hashid) == static_cast<std::int64_t>(id));
  }
  const auto defaults = record_uid_options();
  CHECK(defaults.salt == options.salt);
  CHECK(defaults.min_length == options.min_length);
  CHECK(defaults.alphabet == options.alphabet);
}

TEST_CASE("hashids decode of garbage, tampering or another salt gives nothing") {
  auto ids = Hashids::create(record_uid_options());
  REQUIRE(ids);
  const std::string good = ids->encode(88793);
  REQUIRE(good.size() == 32);
  CHECK(ids->decode("").empty());
  CHECK(ids->decode("!!!!").empty());
  CHECK(ids->decode("hello world").empty());
  CHECK(ids->decode(std::string(32, 'a')).empty());
  CHECK(ids->decode(std::string(200, '9')).empty());  // far beyond 64 bits
  std::string upper = good;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(ids->decode(upper).empty());
  for (std::size_t i = 0; i < good.size(); ++i) {  // every one-character change is rejected
    std::string changed = good;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    CAPTURE(changed);
    CHECK(ids->decode(changed).empty());
  }
  CHECK(ids->decode(good.substr(1)).empty());
  CHECK(ids->decode(good + "a").empty());
  auto other = Hashids::create(
      {.salt = "another salt", .min_length = 32, .alphabet = record_uid_options().alphabet});
  REQUIRE(other);
  CHECK(other->decode(good).empty());
  CHECK_FALSE(decode_record_uid("not a record uid"));
  CHECK(record_uid(-1) == "");
}

TEST_CASE("hashids round-trips several numbers and extremes with the default alphabet") {
  auto ids = Hashids::create({.salt = "this is my salt"});
  REQUIRE(ids);
  const std::vector<std::uint64_t> numbers{1, 2, 3, 0, 18446744073709551615ULL, 42};
  const std::string encoded = ids->encode(numbers);
  CHECK(ids->decode(encoded) == numbers);
  CHECK(ids->decode_one(encoded) == std::nullopt);  // more than one number
  CHECK(ids->encode(std::span<const std::uint64_t>{}) == "");
  for (std::uint64_t n : {0ULL, 1ULL, 99ULL, 1000000007ULL, 18446744073709551615ULL}) {
    CHECK(ids->decode_one(ids->encode(n)) == n);
  }
  auto padded = Hashids::create({.salt = "s", .min_length = 50});
  REQUIRE(padded);
  CHECK(padded->encode(7).size() == 50);
  CHECK(padded->decode_one(padded->encode(7)) == 7U);
}

TEST_CASE("hashids refuses unusable alphabets") {
  CHECK_FALSE(Hashids::create({.alphabet = "abcdefghijklmno"}));       // 15
  CHECK_FALSE(Hashids::create({.alphabet = "aaaaaaaaaaaaaaaaaaaa"}));  // 1 unique
  CHECK_FALSE(Hashids::create({.alphabet = "abcdefghijklmnop qrs"}));  // space
  CHECK_FALSE(Hashids::create({.alphabet = "abcdefghijklmnop\xc3\xa9"}));
  CHECK(Hashids::create({.alphabet = "abcdefghijklmnop"}));
}

// --- RSA signatures
// -------------------------------------------------------------------------------

TEST_CASE("every RSA signature vector verifies as expected") {
  const json& rsa = section("rsa_signature");
  const auto pem = rsa.at("public_key_pem").get<std::string>();
  auto key = RsaPublicKey::from_pem(pem);
  REQUIRE_MESSAGE(key, key.error().message);
  REQUIRE(rsa.at("cases").size() >= 1);
  for (const auto& c : rsa.at("cases")) {
    const auto body = c.at("body").get<std::string>();
    const auto ts = c.at("timestamp").get<std::int64_t>();
    const auto sig = c.at("signature").get<std::string>();
    const bool valid = c.at("valid").get<bool>();
    CAPTURE(body);
    const auto check = key->verify(body, ts, sig);
    CHECK(check.valid == valid);
    if (!check.valid) CHECK_FALSE(check.reason.empty());
    CHECK(verify_signature(pem, body, ts, sig).valid == valid);
  }
}

TEST_CASE("a tampered body, timestamp or signature fails verification with a reason") {
  const json& rsa = section("rsa_signature");
  const auto pem = rsa.at("public_key_pem").get<std::string>();
  const json* good = nullptr;
  for (const auto& c : rsa.at("cases")) {
    if (c.at("valid").get<bool>()) good = &c;
  }
  REQUIRE(good != nullptr);
  const auto body = good->at("body").get<std::string>();
  const auto ts = good->at("timestamp").get<std::int64_t>();
  const auto sig = good->at("signature").get<std::string>();
  REQUIRE(verify_signature(pem, body, ts, sig).valid);

  std::string body2 = body;
  body2[body2.size() / 2] ^= 1;
  CHECK_FALSE(verify_signature(pem, body2, ts, sig).valid);
  CHECK_FALSE(verify_signature(pem, body, ts + 1, sig).valid);
  CHECK_FALSE(verify_signature(pem, body, ts - 1, sig).valid);
  std::string sig2 = sig;
  sig2[10] = sig2[10] == 'A' ? 'B' : 'A';
  const auto tampered = verify_signature(pem, body, ts, sig2);
  CHECK_FALSE(tampered.valid);
  CHECK(tampered.reason.find("does not match") != std::string::npos);

  const auto bad_b64 = verify_signature(pem, body, ts, "not base64!");
  CHECK_FALSE(bad_b64.valid);
  CHECK(bad_b64.reason.find("base64") != std::string::npos);
  CHECK_FALSE(verify_signature(pem, body, ts, "").valid);
  CHECK_FALSE(verify_signature(pem, body, ts, base64_encode("short")).valid);

  const auto bad_key = verify_signature(
      "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", body, ts, sig);
  CHECK_FALSE(bad_key.valid);
  CHECK(bad_key.reason.find("bad public key") != std::string::npos);
  CHECK_FALSE(verify_signature("", body, ts, sig).valid);
  CHECK_FALSE(RsaPublicKey::from_pem("garbage"));
  CHECK(RsaPublicKey::from_pem("garbage").error().kind == ErrorKind::bad_key);
  CHECK_FALSE(RsaPublicKey{}.verify(body, ts, sig).valid);  // a default key verifies nothing
}

TEST_CASE("a PKCS#1 RSA PUBLIC KEY verifies the vectors too") {
  const json& rsa = section("rsa_signature");
  const auto pem = rsa.at("public_key_pem").get<std::string>();
  // SubjectPublicKeyInfo DER of a 2048-bit RSA key = a 24-byte header + the PKCS#1 key.
  std::string b64;
  std::istringstream lines(pem);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("-----", 0) != 0) b64 += line;
  }
  const std::string spki = bytes_of_base64(b64);
  REQUIRE(spki.size() > 24);
  const std::string pkcs1 = base64_encode(spki.substr(24));
  std::string pkcs1_pem = "-----BEGIN RSA PUBLIC KEY-----\n";
  for (std::size_t i = 0; i < pkcs1.size(); i += 64) pkcs1_pem += pkcs1.substr(i, 64) + "\n";
  pkcs1_pem += "-----END RSA PUBLIC KEY-----\n";
  auto key = RsaPublicKey::from_pem(pkcs1_pem);
  REQUIRE_MESSAGE(key, key.error().message);
  for (const auto& c : rsa.at("cases")) {
    CHECK(key->verify(c.at("body").get<std::string>(), c.at("timestamp").get<std::int64_t>(),
                      c.at("signature").get<std::string>())
              .valid == c.at("valid").get<bool>());
  }
}

TEST_CASE("sign_body signs what verify accepts, and only with the matching key") {
  auto pair = generate_rsa_key_pair(2048);
  REQUIRE_MESSAGE(pair, pair.error().message);
  auto other = generate_rsa_key_pair(2048);
  REQUIRE(other);
  const std::string body = R"({"message_uid": "m1", "record_uid": "x"})";
  auto sig = sign_body(pair->private_key_pem, body, 1700000000);
  REQUIRE_MESSAGE(sig, sig.error().message);
  CHECK(verify_signature(pair->public_key_pem, body, 1700000000, *sig).valid);
  CHECK_FALSE(verify_signature(other->public_key_pem, body, 1700000000, *sig).valid);
  CHECK_FALSE(verify_signature(pair->public_key_pem, body + " ", 1700000000, *sig).valid);
  CHECK_FALSE(sign_body("not a key", body, 1));
  CHECK_FALSE(sign_body(pair->public_key_pem, body, 1));  // a public key cannot sign
  CHECK_FALSE(generate_rsa_key_pair(512));
}

// --- data files
// -----------------------------------------------------------------------------------

TEST_CASE("the error table loads every class of errors.json with code, name and message") {
  auto table = midas_api::data::load_error_table(kDataDir);
  REQUIRE_MESSAGE(table, table.error().message);
  const json raw = json::parse(read_file(kDataDir / "errors.json"));
  REQUIRE(raw.is_array());
  REQUIRE(table->errors.size() == raw.size());
  CHECK(raw.size() == 23);
  for (const auto& e : raw) {
    const auto cls = e.at("class").get<std::string>();
    CAPTURE(cls);
    const auto* info = table->by_class(cls);
    REQUIRE(info != nullptr);
    CHECK(info->code == e.at("code").get<int>());
    CHECK(info->name == e.at("name").get<std::string>());
    CHECK(info->message == e.at("message").get<std::string>());
    CHECK_FALSE(info->message.empty());
    CHECK(info->system_action_required == e.at("system_action_required").get<bool>());
    CHECK(table->by_code(info->code) == info);
  }
  CHECK(table->by_class("NoSuchError") == nullptr);
  CHECK(table->by_code(200) == nullptr);
  REQUIRE(table->by_class("StatusLoginFailedError") != nullptr);
  CHECK(table->by_class("StatusLoginFailedError")->code == 403);
  CHECK(table->by_code(530)->class_name == "EndSiteDownError");
}

TEST_CASE("the user store and card tables load") {
  auto data = midas_api::data::load_reference_data(kDataDir);
  REQUIRE_MESSAGE(data, data.error().message);
  const auto& users = data->users;
  const json raw = json::parse(read_file(kDataDir / "mock_users.json"));
  CHECK(users.users.size() == raw.at("users").size());
  CHECK(users.users.size() == 59);
  const auto* six = users.find("666666");
  REQUIRE(six != nullptr);
  CHECK(six->id == "666666");
  CHECK(six->points == "1480");
  CHECK(six->points_value == 1480.0);
  CHECK(six->len_transactions == 6);
  CHECK(six->credentials.last_name == "six");
  CHECK(six->credentials.postcode == "rg6 6aa");
  CHECK(six->credentials.email == "six@testbink.com");
  const auto* one = users.find("111111");
  REQUIRE(one != nullptr);
  CHECK(one->points == "20.10");
  CHECK(one->points_value == doctest::Approx(20.1));
  CHECK(users.find("nope") == nullptr);
  CHECK(users.find_by_email("SIX@testbink.com") == six);
  CHECK(users.find_by_email("nobody@testbink.com") == nullptr);
  // Every user matches the file, field by field.
  for (const auto& item : raw.at("users").items()) {
    const std::string id = item.key();  // not a structured binding: clang 14 cannot capture one
    const json& u = item.value();
    CAPTURE(id);
    const auto* user = users.find(id);
    REQUIRE(user != nullptr);
    CHECK(user->points == u.at("points").get<std::string>());
    CHECK(user->len_transactions == u.at("len_transactions").get<int>());
    for (const char* f : {"email", "password", "last_name", "postcode", "date_of_birth"}) {
      const auto& c = user->credentials;
      const std::optional<std::string>* field = std::string_view(f) == "email"       ? &c.email
                                                : std::string_view(f) == "password"  ? &c.password
                                                : std::string_view(f) == "last_name" ? &c.last_name
                                                : std::string_view(f) == "postcode"
                                                    ? &c.postcode
                                                    : &c.date_of_birth;
      const auto& creds = u.at("credentials");
      if (creds.contains(f)) {
        CHECK(*field == creds.at(f).get<std::string>());
      } else {
        CHECK_FALSE(field->has_value());
      }
    }
  }
  REQUIRE(users.transactions.size() == 6);
  CHECK(users.transactions[0].date == "2018-07-01T14:24:15+00:00");
  CHECK(users.transactions[0].points == "20.71");
  CHECK(users.transactions[1].points == "-100.01");
  CHECK_FALSE(users.transactions[0].location.has_value());

  const auto& cards = data->cards;
  const json raw_cards = json::parse(read_file(kDataDir / "mock_cards.json"));
  CHECK(cards.iceland.size() == raw_cards.at("ICELAND").size());
  CHECK(cards.harvey_nichols.size() == raw_cards.at("HARVEY_NICHOLS").size());
  CHECK(cards.iceland.size() == 44);
  CHECK(cards.iceland.at("6332040000000000000") == "000000");
  CHECK(cards.iceland.at("6332040011111111111") == "111111");
  CHECK(cards.harvey_nichols.at("111111") == "1111111111111");
  CHECK(data->errors.errors.size() == 23);
}

TEST_CASE("broken data files are reported, naming the file and the entry") {
  TempDir dir;
  SUBCASE("missing files") {
    auto r = midas_api::data::load_reference_data(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::io);
    CHECK(r.error().message.find("mock_users.json") != std::string::npos);
  }
  SUBCASE("not JSON") {
    dir.write("errors.json", "[{");
    auto r = midas_api::data::load_error_table(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::bad_data);
  }
  SUBCASE("an error without a message") {
    dir.write("errors.json", R"([{"class": "X", "code": 500, "name": "n"}])");
    auto r = midas_api::data::load_error_table(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("message") != std::string::npos);
  }
  SUBCASE("a duplicate code") {
    dir.write("errors.json", R"([{"class": "X", "code": 500, "name": "n", "message": "m"},
                                 {"class": "Y", "code": 500, "name": "n", "message": "m"}])");
    auto r = midas_api::data::load_error_table(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("500") != std::string::npos);
  }
  SUBCASE("a user with non-decimal points") {
    dir.write("mock_users.json", R"({"users": {"1": {"len_transactions": 0, "credentials": {},
                                     "points": "lots"}}, "transactions": []})");
    auto r = midas_api::data::load_user_store(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("user 1") != std::string::npos);
  }
  SUBCASE("a user with more transactions than exist") {
    dir.write("mock_users.json", R"({"users": {"1": {"len_transactions": 2, "credentials": {},
                                     "points": "1"}}, "transactions": []})");
    CHECK_FALSE(midas_api::data::load_user_store(dir.path()));
  }
  SUBCASE("a card table missing") {
    dir.write("mock_cards.json", R"({"ICELAND": {}})");
    auto r = midas_api::data::load_card_tables(dir.path());
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("HARVEY_NICHOLS") != std::string::npos);
  }
}

TEST_CASE("the data directory comes from MIDAS_DATA_DIR, then next to the executable") {
  {
    EnvGuard env("MIDAS_DATA_DIR", kDataDir.string().c_str());
    auto d = midas_api::data::find_data_dir();
    REQUIRE_MESSAGE(d, d.error().message);
    CHECK(*d == kDataDir);
  }
  {
    EnvGuard env("MIDAS_DATA_DIR", "/nonexistent/midas-data");
    auto d = midas_api::data::find_data_dir();
    REQUIRE_FALSE(d);
    CHECK(d.error().message.find("MIDAS_DATA_DIR=/nonexistent/midas-data") != std::string::npos);
  }
  EnvGuard env("MIDAS_DATA_DIR", nullptr);
  const fs::path exe_data = fs::read_symlink("/proc/self/exe").parent_path() / "data";
  REQUIRE_MESSAGE(!fs::exists(exe_data), exe_data << " exists already; this test creates it");
  fs::create_directory(exe_data);
  fs::copy_file(kDataDir / "mock_users.json", exe_data / "mock_users.json");
  auto found = midas_api::data::find_data_dir();
  std::error_code ec;
  fs::remove_all(exe_data, ec);
  REQUIRE_MESSAGE(found, found.error().message);
  CHECK(*found == exe_data);

  auto fallback = midas_api::data::find_data_dir();
  if (fs::is_regular_file(midas_api::data::installed_data_dir() / "mock_users.json")) {
    REQUIRE(fallback);
    CHECK(*fallback == midas_api::data::installed_data_dir());
  } else {
    REQUIRE_FALSE(fallback);
    CHECK(fallback.error().kind == ErrorKind::io);
    CHECK(fallback.error().message.find(exe_data.string()) != std::string::npos);
    CHECK(fallback.error().message.find(midas_api::data::installed_data_dir().string()) !=
          std::string::npos);
  }
}
