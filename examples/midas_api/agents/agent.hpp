// SPDX-License-Identifier: MIT
#pragma once

/// The Agent interface of midas-api: one agent per loyalty scheme slug, created per request with
/// the user's decrypted credentials. Agents report failures by throwing `AgentError`; the HTTP
/// layer turns it into `{"message","code","name"}` with HTTP status = code.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace midas_api {

/// A credential as text: strings as they are, integers printed; nullopt when absent or empty.
/// Shared by every agent that reads credential fields.
inline std::optional<std::string> credential_text(const nlohmann::json& credentials,
                                                  const char* key) {
  if (!credentials.is_object()) return std::nullopt;
  auto it = credentials.find(key);
  if (it == credentials.end()) return std::nullopt;
  if (it->is_string()) {
    auto s = it->get<std::string>();
    if (s.empty()) return std::nullopt;
    return s;
  }
  if (it->is_number_integer()) return it->dump();
  return std::nullopt;
}

// --- errors -------------------------------------------------------------------------------------

/// Identity of one Midas error: its class name in errors.json, its code and its (non-unique) name.
/// The generic message lives in errors.json; main() checks at start that every kind below exists
/// there with the same code and name.
struct ErrorKind {
  std::string_view error_class{};  ///< "EndSiteDownError": the key of /error_reference.
  int code = 520;                  ///< Also the HTTP status and the Hermes status.
  std::string_view name{};         ///< "End site down".
};

/// Every Midas error class of errors.json (the HEAD-only 530 ResourceNotFound, 905 and 906 are
/// not in the contract: a merchant 404 is EndSiteDownError).
namespace errors {
inline constexpr ErrorKind validation{"ValidationError", 401, "Failed validation"};
inline constexpr ErrorKind status_login_failed{"StatusLoginFailedError", 403,
                                               "Invalid credentials"};
inline constexpr ErrorKind pre_registered_card{"PreRegisteredCardError", 406,
                                               "Pre-registered card"};
inline constexpr ErrorKind retry_limit_reached{"RetryLimitReachedError", 429,
                                               "Retry limit reached"};
inline constexpr ErrorKind invalid_mfa_info{"InvalidMFAInfoError", 432, "Invalid MFA"};
inline constexpr ErrorKind status_account_locked{"StatusAccountLockedError", 434,
                                                 "Account locked on end site"};
inline constexpr ErrorKind card_number{"CardNumberError", 436, "Card not registered or Unknown"};
inline constexpr ErrorKind link_limit_exceeded{"LinkLimitExceededError", 437,
                                               "Card not registered or Unknown"};
inline constexpr ErrorKind card_not_registered{"CardNotRegisteredError", 438,
                                               "Card not registered or Unknown"};
inline constexpr ErrorKind general{"GeneralError", 439, "General error"};
inline constexpr ErrorKind status_registration_failed{"StatusRegistrationFailedError", 440,
                                                      "Status registration failed"};
inline constexpr ErrorKind join_in_progress{"JoinInProgressError", 441, "Join in progress"};
inline constexpr ErrorKind no_such_record{"NoSuchRecordError", 444, "Account does not exist"};
inline constexpr ErrorKind account_already_exists{"AccountAlreadyExistsError", 445,
                                                  "Account already exists"};
inline constexpr ErrorKind scheme_requested_delete{"SchemeRequestedDeleteError", 447,
                                                   "Scheme requested account deletion"};
inline constexpr ErrorKind unknown{"UnknownError", 520, "Unknown error"};
inline constexpr ErrorKind end_site_down{"EndSiteDownError", 530, "End site down"};
inline constexpr ErrorKind ip_blocked{"IPBlockedError", 531, "IP blocked"};
inline constexpr ErrorKind password_expired{"PasswordExpiredError", 533, "Password expired"};
inline constexpr ErrorKind not_sent{"NotSentError", 535, "Message was not sent"};
inline constexpr ErrorKind configuration{"ConfigurationError", 536, "Configuration error"};
inline constexpr ErrorKind service_connection{"ServiceConnectionError", 537,
                                              "Service connection error"};
inline constexpr ErrorKind join{"JoinError", 538, "General error preventing join"};

/// All of the above, for start-up checks and lookups by class name.
inline constexpr ErrorKind all[] = {validation,
                                    status_login_failed,
                                    pre_registered_card,
                                    retry_limit_reached,
                                    invalid_mfa_info,
                                    status_account_locked,
                                    card_number,
                                    link_limit_exceeded,
                                    card_not_registered,
                                    general,
                                    status_registration_failed,
                                    join_in_progress,
                                    no_such_record,
                                    account_already_exists,
                                    scheme_requested_delete,
                                    unknown,
                                    end_site_down,
                                    ip_blocked,
                                    password_expired,
                                    not_sent,
                                    configuration,
                                    service_connection,
                                    join};
}  // namespace errors

/// A Midas error raised by an agent (or by the journeys around it).
///
/// `message()` is the agent's specific message, empty for "use the generic message of
/// errors.json". `cause()` optionally nests the error this one wraps; retry classification looks
/// at `root()` (the innermost AgentError), so a wrapped 530 stays retryable.
class AgentError : public std::exception {
 public:
  /// An error of `kind`, with an optional specific message and an optional wrapped cause.
  explicit AgentError(ErrorKind kind, std::string message = {},
                      std::shared_ptr<const AgentError> cause = nullptr)
      : kind_(kind), message_(std::move(message)), cause_(std::move(cause)) {
    what_ = std::to_string(kind_.code) + " " + std::string(kind_.name);
    if (!message_.empty()) what_ += ": " + message_;
  }

  /// The error's identity (class, code, name).
  [[nodiscard]] const ErrorKind& kind() const noexcept { return kind_; }
  /// errors.json class name, e.g. "EndSiteDownError".
  [[nodiscard]] std::string_view error_class() const noexcept { return kind_.error_class; }
  /// Midas code = HTTP status.
  [[nodiscard]] int code() const noexcept { return kind_.code; }
  /// Midas name, e.g. "End site down".
  [[nodiscard]] std::string_view name() const noexcept { return kind_.name; }
  /// The specific message; empty means the generic one of errors.json.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// The wrapped error, or nullptr.
  [[nodiscard]] const std::shared_ptr<const AgentError>& cause() const noexcept { return cause_; }
  /// The innermost error of the cause chain (this one if it wraps nothing).
  [[nodiscard]] const AgentError& root() const noexcept {
    const AgentError* e = this;
    while (e->cause_) e = e->cause_.get();
    return *e;
  }
  /// "530 End site down: <message>" — for logs. Never contains credentials.
  [[nodiscard]] const char* what() const noexcept override { return what_.c_str(); }

 private:
  ErrorKind kind_;
  std::string message_;
  std::shared_ptr<const AgentError> cause_;
  std::string what_;
};

// --- what an agent gets -------------------------------------------------------------------------

/// Journey types of the original (`JourneyTypes`).
enum class JourneyType : int { join = 0, link = 1, add = 2, update = 3, removed = 4 };

/// The request an agent serves, with decrypted credentials. Never log `credentials`.
struct UserInfo {
  nlohmann::json credentials = nlohmann::json::object();  ///< Decrypted JSON object.
  std::int64_t scheme_account_id = 0;
  std::string user_set{};       ///< "1,2" or the user_id as text.
  std::optional<int> status{};  ///< Hermes status the caller passed, if any.
  JourneyType journey_type = JourneyType::update;
  std::optional<std::int64_t> bink_user_id{};
  std::string channel{};   ///< Join only (e.g. "com.bink.wallet").
  std::string tid{};       ///< Transaction id (header `transaction` / `X-Azure-Ref`).
  bool from_join = false;  ///< The login right after a join.
  /// Correlates a join with the merchant's callback: the join task sets it to its task id, and
  /// merchants echo it back. Empty: the agent makes one up.
  std::string message_uid{};
};

/// One HTTP agent's merchant settings (from the MERCHANT_CONFIG file).
struct MerchantConfig {
  std::string merchant_url{};    ///< Base URL of the merchant API.
  std::string security_type{};   ///< Inbound callback auth: "rsa" or "open_auth".
  std::string public_key_pem{};  ///< Merchant public key (rsa), PEM text.
  std::string callback_url{};    ///< Where the merchant posts join results.
  nlohmann::json extra = nlohmann::json::object();  ///< Any other keys of the slug's entry.
};

/// How HTTP agents talk to merchants (MIDAS_API.md: request-level retries).
struct HttpSettings {
  std::chrono::milliseconds timeout{5000};        ///< Connect + read timeout per request.
  int max_retries = 3;                            ///< On 500/502/504 and connection errors.
  std::chrono::milliseconds backoff_factor{300};  ///< Sleep backoff_factor x 2^n between tries.
};

/// The login retry counter (MIDAS_API.md "Login retry limit"), in process or in Redis.
/// Implementations must be thread-safe. Keys look like `retry-mockagentice-42` (lower case).
class LoginRetryStore {
 public:
  virtual ~LoginRetryStore() = default;
  /// Current count for `key`; 0 when missing or expired.
  [[nodiscard]] virtual int count(const std::string& key) = 0;
  /// Adds one failed login (no expiry).
  virtual void increment(const std::string& key) = 0;
  /// Sets the count to `limit` for `ttl` (900 s), after which the key is gone.
  virtual void max_out(const std::string& key, int limit, std::chrono::seconds ttl) = 0;
};

/// Everything an agent is built with besides the request. Outlives every agent.
struct AgentContext {
  std::string slug{};                        ///< The slug the agent was found under.
  const MerchantConfig* merchant = nullptr;  ///< nullptr: not configured (-> 536 for HTTP agents).
  HttpSettings http{};
  /// Log sink for agent diagnostics (one line each; never credentials).
  std::function<void(std::string_view level, std::string_view message)> log{};
};

// --- what an agent returns ----------------------------------------------------------------------

/// A decimal amount kept as its text, as the original's Decimal: "20.10", "-100.01", "1480".
/// Hashes and labels use the text; JSON output uses the number.
struct Amount {
  std::string text = "0";
  /// The number for JSON output.
  [[nodiscard]] double to_double() const { return std::stod(text); }
};

/// One voucher; null optional fields are dropped from the JSON.
struct Voucher {
  std::string state{};  ///< issued, inprogress, expired, redeemed, cancelled, pending.
  std::optional<std::string> issue_date{}, redeem_date{}, expiry_date{}, code{};
  std::optional<Amount> value{}, target_value{};
  std::optional<std::string> conversion_date{};
};

/// An agent's balance; the journey adds scheme_account_id, user_set, points_label, bink_user_id.
struct Balance {
  Amount points{};
  Amount value{};
  std::string value_label{};  ///< Capped to "Reward" by the journey when > 11 characters.
  int reward_tier = 0;
  std::optional<nlohmann::json> balance{};  ///< Dropped from the output when null.
  std::optional<std::vector<Voucher>> vouchers{};
};

/// One transaction; the journey adds hash, scheme_account_id and user_set.
struct Transaction {
  std::chrono::sys_seconds date{};  ///< UTC; printed "YYYY-MM-DD HH:MM:SS+00:00".
  std::string description{};
  Amount points{};
  std::optional<Amount> value{};
  std::optional<std::string> location{};
};

/// What a join returns.
struct JoinResult {
  /// True for asynchronous agents: the merchant calls back `/join/merchant/{slug}` later.
  bool expecting_callback = false;
  /// Identifiers to PUT to Hermes credentials (card_number, barcode, merchant_identifier...).
  nlohmann::json identifier = nlohmann::json::object();
};

// --- the interface ------------------------------------------------------------------------------

/// One scheme's agent, created per request by its factory with the request's UserInfo.
///
/// Every member may throw `AgentError`; anything else thrown is reported as 520 Unknown error.
/// An agent object serves one request on one thread (not thread-safe); its factory and the
/// AgentContext are shared by all threads.
class Agent {
 public:
  virtual ~Agent() = default;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Logs in with the UserInfo given at creation. The caller applies the login retry limit.
  virtual void login() = 0;
  /// The balance after login(); nullopt answers `null` and publishes nothing.
  [[nodiscard]] virtual std::optional<Balance> balance() = 0;
  /// The transactions after login(), newest as the merchant orders them.
  [[nodiscard]] virtual std::vector<Transaction> transactions() = 0;
  /// Enrols the user (credentials hold the join fields).
  virtual JoinResult join() = 0;
  /// Handles the merchant's asynchronous join result (decoded callback body); returns the
  /// identifiers to PUT to Hermes. Errors in `error_codes` throw the mapped AgentError.
  virtual JoinResult join_callback(const nlohmann::json& data) = 0;
  /// Identifiers learned at login (to PUT to Hermes credentials); empty object: none.
  [[nodiscard]] virtual nlohmann::json identifier() const { return nlohmann::json::object(); }

  /// Lower-case agent class name for the login retry key `retry-{class}-{scheme_account_id}`,
  /// e.g. "mockagentice", "iceland".
  [[nodiscard]] virtual std::string retry_key_class() const = 0;
  /// Failed logins allowed before 429; nullopt: unlimited (the mock agents).
  [[nodiscard]] virtual std::optional<int> retry_limit() const { return 5; }

 protected:
  Agent() = default;
};

/// Creates an agent for one request.
using AgentFactory =
    std::function<std::unique_ptr<Agent>(const AgentContext& context, UserInfo user)>;

/// One registered agent.
struct AgentInfo {
  std::string slug{};
  /// Credential fields a client must send, listed by GET /agents.
  std::vector<std::string> credential_fields{};
  AgentFactory factory{};
  AgentContext context{};  ///< Built at start (merchant config, HTTP settings...).
};

/// Agents by slug. Filled at start, then read-only (find() is safe from many threads).
class AgentRegistry {
 public:
  /// Registers (or replaces) an agent under `info.slug`.
  void add(AgentInfo info) {
    std::string slug = info.slug;
    agents_[slug] = std::move(info);
  }
  /// The agent for `slug`; as in the original, an unknown slug starting with "performance-mock"
  /// resolves to "performance-mock". nullptr if none.
  [[nodiscard]] const AgentInfo* find(std::string_view slug) const {
    if (auto it = agents_.find(slug); it != agents_.end()) return &it->second;
    if (slug.starts_with("performance-mock")) {
      if (auto it = agents_.find(std::string_view{"performance-mock"}); it != agents_.end())
        return &it->second;
    }
    return nullptr;
  }
  /// All agents, by slug.
  [[nodiscard]] const std::map<std::string, AgentInfo, std::less<>>& all() const noexcept {
    return agents_;
  }

 private:
  std::map<std::string, AgentInfo, std::less<>> agents_;
};

}  // namespace midas_api
