// SPDX-License-Identifier: MIT
#include "agents/mock_agents.hpp"

#include <array>
#include <cctype>
#include <cstdio>
#include <random>
#include <thread>

#include "crypto/labels.hpp"
#include "crypto/transactions.hpp"

namespace midas_api {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has_all(const nlohmann::json& credentials, std::span<const char* const> keys) {
  for (const char* k : keys) {
    if (!credential_text(credentials, k)) return false;
  }
  return true;
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// `prefix` then n random digits (appended: GCC 12 -Wrestrict misfires on "x" + temporary).
std::string random_digits(std::string prefix, int n) {
  std::uniform_int_distribution<int> d(0, 9);
  std::string s = std::move(prefix);
  for (int i = 0; i < n; ++i) s += static_cast<char>('0' + d(rng()));
  return s;
}

std::string random_hex(std::string prefix, int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uniform_int_distribution<int> d(0, 15);
  std::string s = std::move(prefix);
  for (int i = 0; i < n; ++i) s += kHex[d(rng())];
  return s;
}

std::string two_decimals(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::vector<Transaction> first_transactions(const data::UserStore& store, int n) {
  std::vector<Transaction> out;
  for (int i = 0; i < n && static_cast<std::size_t>(i) < store.transactions.size(); ++i) {
    const auto& t = store.transactions[static_cast<std::size_t>(i)];
    auto date = crypto::parse_iso_datetime(t.date);
    if (!date) throw AgentError(errors::unknown, "bad date in the mock transactions");
    out.push_back(Transaction{.date = *date,
                              .description = t.description,
                              .points = Amount{t.points},
                              .value = std::nullopt,
                              .location = t.location});
  }
  return out;
}

/// Base of the mocks: data access and the unlimited retry limit.
class MockAgent : public Agent {
 public:
  MockAgent(std::shared_ptr<const data::ReferenceData> data, MockOptions options, UserInfo user)
      : data_(std::move(data)), options_(options), user_(std::move(user)) {}

  [[nodiscard]] std::optional<int> retry_limit() const override { return std::nullopt; }
  [[nodiscard]] nlohmann::json identifier() const override { return identifier_; }
  JoinResult join_callback(const nlohmann::json&) override {
    throw AgentError(errors::unknown, "This agent does not take join callbacks.");
  }

 protected:
  const data::MockUser& user_or_403(std::string_view id) const {
    const data::MockUser* u = data_->users.find(id);
    if (!u) throw AgentError(errors::status_login_failed);
    return *u;
  }
  const data::MockUser& logged_in() const {
    if (!user_record_) throw AgentError(errors::unknown, "not logged in");
    return *user_record_;
  }

  std::shared_ptr<const data::ReferenceData> data_;
  MockOptions options_;
  UserInfo user_;
  const data::MockUser* user_record_ = nullptr;
  nlohmann::json identifier_ = nlohmann::json::object();
};

// --- iceland-bonus-card-mock --------------------------------------------------------------------

constexpr std::array<const char*, 11> kIcelandJoinFields{
    "title",    "first_name", "last_name", "phone",     "email",    "date_of_birth",
    "postcode", "county",     "town_city", "address_1", "address_2"};
constexpr std::string_view kIcelandGhostPrefix = "633204003123123";

const ErrorKind* iceland_error_last_name(std::string_view last_name) {
  if (last_name == "external_unhandled_error") return &errors::general;
  if (last_name == "account_blocked") return &errors::status_account_locked;
  if (last_name == "authorisation_expired") return &errors::password_expired;
  if (last_name == "user_doesnt_exist") return &errors::no_such_record;
  if (last_name == "non_recoverable_error") return &errors::invalid_mfa_info;
  return nullptr;
}

class MockAgentIce final : public MockAgent {
 public:
  using MockAgent::MockAgent;

  void login() override {
    const auto& c = user_.credentials;
    identifier_ = nlohmann::json::object();
    // (1) the login right after a join
    if (has_all(c, kIcelandJoinFields)) {
      user_record_ = &user_or_403("000000");
      std::string card =
          credential_text(c, "card_number")
              .value_or(credential_text(c, "barcode").value_or(random_digits("9000", 15)));
      identifier_ = {{"card_number", card}, {"barcode", card}, {"merchant_identifier", "testjoin"}};
      return;
    }
    if (credential_text(c, "merchant_identifier") == "testjoin") {
      user_record_ = &user_or_403("000000");
      return;
    }
    // (2) special last names
    auto last_name = credential_text(c, "last_name");
    if (last_name) {
      if (const ErrorKind* e = iceland_error_last_name(*last_name)) throw AgentError(*e);
    }
    // (3) a card that does not exist yet
    auto card = credential_text(c, "card_number");
    if (!card) card = credential_text(c, "barcode");
    if (card && card->starts_with(kIcelandGhostPrefix)) {
      throw AgentError(errors::pre_registered_card);
    }
    // (4) card table, then last name and postcode
    if (!card) throw AgentError(errors::status_login_failed);
    auto it = data_->cards.iceland.find(*card);
    if (it == data_->cards.iceland.end()) throw AgentError(errors::status_login_failed);
    const data::MockUser& u = user_or_403(it->second);
    if (u.id >= "999000" && u.id <= "999004") std::this_thread::sleep_for(options_.slow_user_delay);
    auto postcode = credential_text(c, "postcode");
    if (!last_name || !postcode || !u.credentials.last_name || !u.credentials.postcode ||
        lower(*last_name) != lower(*u.credentials.last_name) ||
        lower(*postcode) != lower(*u.credentials.postcode)) {
      throw AgentError(errors::status_login_failed);
    }
    user_record_ = &u;
    if (!credential_text(c, "merchant_identifier")) identifier_["merchant_identifier"] = "2900001";
    if (!credential_text(c, "card_number")) identifier_["card_number"] = *card;
    if (!credential_text(c, "barcode")) identifier_["barcode"] = *card;
  }

  std::optional<Balance> balance() override {
    const auto& u = logged_in();
    return Balance{.points = Amount{u.points},
                   .value = Amount{two_decimals(u.points_value)},
                   .value_label = crypto::value_label(u.points_value),
                   .reward_tier = 0,
                   .balance = std::nullopt,
                   .vouchers = std::nullopt};
  }

  std::vector<Transaction> transactions() override {
    return first_transactions(data_->users, logged_in().len_transactions);
  }

  JoinResult join() override {
    const auto& c = user_.credentials;
    for (const char* f : kIcelandJoinFields) {
      if (!credential_text(c, f))
        throw AgentError(errors::join, std::string("Missing the credential ") + f + ".");
    }
    const std::string postcode = lower(*credential_text(c, "postcode"));
    if (postcode == "fail" || postcode == "fa1 1fa") throw AgentError(errors::unknown);
    const std::string email = *credential_text(c, "email");
    if (lower(email) == "fail@unknown.com") throw AgentError(errors::unknown);
    auto card = credential_text(c, "card_number");
    if (!card) card = credential_text(c, "barcode");
    if (card && data_->cards.iceland.contains(*card)) {
      throw AgentError(errors::account_already_exists);
    }
    if (data_->users.find_by_email(email)) {
      if (card && card->starts_with(kIcelandGhostPrefix)) throw AgentError(errors::join);
      throw AgentError(errors::account_already_exists);
    }
    return JoinResult{};
  }

  [[nodiscard]] std::string retry_key_class() const override { return "mockagentice"; }
};

// --- harvey-nichols-mock ------------------------------------------------------------------------

constexpr std::array<const char*, 5> kHnJoinFields{"email", "password", "title", "first_name",
                                                   "last_name"};

const ErrorKind* hn_error_email(std::string_view email) {
  const std::string local = lower(email.substr(0, email.find('@')));
  if (email.find('@') == std::string_view::npos) return nullptr;
  if (local == "endsitedown") return &errors::end_site_down;
  return iceland_error_last_name(local);  // the same special names as Iceland's last_name
}

class MockAgentHn final : public MockAgent {
 public:
  using MockAgent::MockAgent;

  void login() override {
    const auto& c = user_.credentials;
    identifier_ = nlohmann::json::object();
    auto email = credential_text(c, "email");
    if (email) {
      if (const ErrorKind* e = hn_error_email(*email)) throw AgentError(*e);
    }
    if (has_all(c, kHnJoinFields)) {
      user_record_ = &user_or_403("000000");
      identifier_ = {{"card_number", random_digits("911", 10)}};
      return;
    }
    auto card = credential_text(c, "card_number");
    if (card && card->starts_with("911")) {
      user_record_ = &user_or_403("000000");
      return;
    }
    auto password = credential_text(c, "password");
    const data::MockUser* u = email ? data_->users.find_by_email(*email) : nullptr;
    if (!u || !password || u->credentials.password != *password) {
      throw AgentError(errors::status_login_failed);
    }
    user_record_ = u;
    auto it = data_->cards.harvey_nichols.find(u->id);
    if (it != data_->cards.harvey_nichols.end() && card != it->second) {
      identifier_ = {{"card_number", it->second}};
    }
  }

  std::optional<Balance> balance() override {
    const auto& u = logged_in();
    return Balance{.points = Amount{u.points},
                   .value = Amount{"0"},
                   .value_label = "",
                   .reward_tier = 1,
                   .balance = std::nullopt,
                   .vouchers = std::nullopt};
  }

  std::vector<Transaction> transactions() override {
    return first_transactions(data_->users, logged_in().len_transactions);
  }

  JoinResult join() override {
    const auto& c = user_.credentials;
    for (const char* f : kHnJoinFields) {
      if (!credential_text(c, f))
        throw AgentError(errors::join, std::string("Missing the credential ") + f + ".");
    }
    const std::string email = *credential_text(c, "email");
    if (data_->users.find_by_email(email)) throw AgentError(errors::account_already_exists);
    static constexpr std::array<std::string_view, 10> kTitles{
        "Mr", "Mrs", "Miss", "Ms", "Dame", "Sir", "Doctor", "Professor", "Lord", "Lady"};
    std::string title = lower(*credential_text(c, "title"));
    if (!title.empty())
      title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    bool title_ok = false;
    for (auto t : kTitles) title_ok = title_ok || t == title;
    if (!title_ok || credential_text(c, "password")->size() < 6) {
      throw AgentError(errors::status_registration_failed);
    }
    if (lower(email) == "fail@unknown.com") throw AgentError(errors::unknown);
    return JoinResult{};
  }

  [[nodiscard]] std::string retry_key_class() const override { return "mockagenthn"; }
};

// --- performance-mock ---------------------------------------------------------------------------

class MockPerformance final : public MockAgent {
 public:
  using MockAgent::MockAgent;

  void login() override {
    auto card = credential_text(user_.credentials, "card_number");
    if (!card) card = credential_text(user_.credentials, "barcode");
    if (card && card->starts_with("0")) throw AgentError(errors::pre_registered_card);
    identifier_ = nlohmann::json::object();
    if (!card) identifier_ = {{"card_number", random_hex("1", 32)}};
  }

  std::optional<Balance> balance() override {
    const int points = std::uniform_int_distribution<int>(1, 50)(rng());
    const std::string text = std::to_string(points);
    return Balance{.points = Amount{text},
                   .value = Amount{text},
                   .value_label = crypto::value_label(points),
                   .reward_tier = 0,
                   .balance = std::nullopt,
                   .vouchers = std::nullopt};
  }

  std::vector<Transaction> transactions() override {
    std::vector<Transaction> out;
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    std::uniform_int_distribution<int> seconds_ago(0, 365 * 24 * 3600);
    std::uniform_int_distribution<int> points(-100, 500);
    for (int i = 0; i < 5; ++i) {
      out.push_back(Transaction{.date = now - std::chrono::seconds{seconds_ago(rng())},
                                .description = "Performance transaction",
                                .points = Amount{std::to_string(points(rng()))},
                                .value = std::nullopt,
                                .location = std::nullopt});
    }
    return out;
  }

  JoinResult join() override { return JoinResult{}; }

  [[nodiscard]] std::string retry_key_class() const override { return "mockperformance"; }
};

template <class T>
AgentFactory factory_of(std::shared_ptr<const data::ReferenceData> data, MockOptions options) {
  return [data = std::move(data), options](const AgentContext&, UserInfo user) {
    return std::unique_ptr<Agent>(std::make_unique<T>(data, options, std::move(user)));
  };
}

}  // namespace

void register_mock_agents(AgentRegistry& registry, std::shared_ptr<const data::ReferenceData> data,
                          MockOptions options) {
  registry.add({.slug = "iceland-bonus-card-mock",
                .credential_fields = {"card_number", "last_name", "postcode"},
                .factory = factory_of<MockAgentIce>(data, options),
                .context = {.slug = "iceland-bonus-card-mock"}});
  registry.add({.slug = "harvey-nichols-mock",
                .credential_fields = {"email", "password"},
                .factory = factory_of<MockAgentHn>(data, options),
                .context = {.slug = "harvey-nichols-mock"}});
  registry.add({.slug = "performance-mock",
                .credential_fields = {},
                .factory = factory_of<MockPerformance>(data, options),
                .context = {.slug = "performance-mock"}});
}

}  // namespace midas_api
