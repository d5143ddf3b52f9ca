// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agents/agent.hpp"
#include "logging.hpp"

/// midas-api configuration: environment variables plus the JSON merchant config file.
namespace midas_api {

/// A setting that is missing or invalid; start-up stops with `what()`, which names it.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string setting, const std::string& why)
      : std::runtime_error(setting + ": " + why), setting_(std::move(setting)) {}
  /// The environment variable, option or file key at fault.
  [[nodiscard]] const std::string& setting() const noexcept { return setting_; }

 private:
  std::string setting_;
};

/// Everything midas-api reads at start. Defaults are those of MIDAS_API.md.
struct Config {
  std::string backend_url = "memory://";  ///< MIDAS_BACKEND_URL (or --backend).
  std::string redis_url{};                ///< REDIS_URL (optional; for the login retry limit).
  std::string hermes_url{};               ///< HERMES_URL; empty: Hermes publishing disabled.
  std::string hades_url{};                ///< HADES_URL; empty: Hades publishing disabled.
  std::string aes_key{};                  ///< AES_KEY, or the contents of AES_KEY_FILE. Required.
  std::string host = "0.0.0.0";           ///< DEV_HOST (or --host).
  int port = 8000;                        ///< DEV_PORT (or --port); 0 picks a free port.
  Level log_level = Level::info;          ///< LOG_LEVEL.
  bool log_json = true;                   ///< LOG_JSON.
  double retry_backoff_base = 3;          ///< RETRY_BACKOFF_BASE (join retries).
  double retry_unit_seconds = 60;         ///< RETRY_UNIT_SECONDS (fractions allowed).
  int max_retry_count = 3;                ///< MAX_RETRY_COUNT.
  int max_callback_retry_count = 3;       ///< MAX_CALLBACK_RETRY_COUNT.
  int worker_concurrency = 4;             ///< WORKER_CONCURRENCY (0: no workers in process).
  double worker_lease_seconds = 8;        ///< WORKER_LEASE_SECONDS.
  int callback_max_age_seconds = 120;     ///< CALLBACK_MAX_AGE_SECONDS.
  /// TASK_RETENTION_SECONDS: finished join tasks are kept this long for /tasks and midasctl, then
  /// pruned by the processes that run workers (0: kept until pruned by hand).
  std::int64_t task_retention_seconds = 7 * 86400;
  int http_threads = 32;  ///< HTTP_THREADS: the request thread pool (one per open connection).
  std::size_t publish_queue_capacity = 10000;  ///< PUBLISH_QUEUE_CAPACITY.
  int publish_threads = 2;                     ///< PUBLISH_THREADS.
  std::string service_api_key{};  ///< SERVICE_API_KEY: sent as `Authorization: token <key>`.
  /// MOCK_SLOW_USER_SECONDS: how long the mock "slow" users (999000-999004) take to log in.
  std::chrono::milliseconds mock_slow_user_delay{std::chrono::seconds{60}};
  std::string merchant_config_path{};  ///< MERCHANT_CONFIG; empty: no HTTP agent configured.
  std::map<std::string, MerchantConfig, std::less<>> merchants{};  ///< The file, by slug.
  /// MIDAS_DATA_DIR is read by data::find_data_dir(); tests set this instead (empty: look up).
  std::filesystem::path data_dir{};
};

/// Reads one environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;

/// The process environment.
[[nodiscard]] EnvLookup process_env();

/** Builds the configuration from `env` (and the merchant config file it names). Empty values
 *  count as unset. Throws ConfigError naming the first missing or invalid setting. */
[[nodiscard]] Config load_config(const EnvLookup& env);

/** Parses a merchant config file:
 *  ```json
 *  { "iceland-bonus-card": {
 *      "merchant_url": "http://127.0.0.1:9100/merchant",   // required, http:// or https://
 *      "security_type": "rsa",                             // "rsa" or "open_auth" (default)
 *      "public_key_pem": "-----BEGIN PUBLIC KEY-----...",  // rsa: this or public_key_file
 *      "public_key_file": "keys/merchant.pub.pem",         // relative to the config file
 *      "callback_url": "http://127.0.0.1:8000/join/merchant/iceland-bonus-card",
 *      "timeout_seconds": 5, "max_retries": 3, "backoff_factor_seconds": 0.3 } }
 *  ```
 *  Other keys of an entry are kept in MerchantConfig::extra. Throws ConfigError
 *  ("MERCHANT_CONFIG <slug>.<key>: ...").*/
[[nodiscard]] std::map<std::string, MerchantConfig, std::less<>> load_merchant_config(
    const std::filesystem::path& file);

/// The HTTP settings of one merchant entry (timeout_seconds, max_retries,
/// backoff_factor_seconds in `extra`), defaults otherwise.
[[nodiscard]] HttpSettings http_settings_of(const MerchantConfig& merchant);

/// The --help text describing every environment variable.
[[nodiscard]] std::string environment_help();

}  // namespace midas_api
