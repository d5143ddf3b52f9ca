// SPDX-License-Identifier: MIT
#include "config.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace midas_api {
namespace {

std::optional<std::string> get(const EnvLookup& env, const char* name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

long long parse_int(const char* name, const std::string& text, long long min, long long max) {
  long long v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc{} || p != end) throw ConfigError(name, "'" + text + "' is not an integer");
  if (v < min || v > max) {
    throw ConfigError(name, "must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", not " + text);
  }
  return v;
}

double parse_double(const char* name, const std::string& text, double min, double max) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc{} || p != end || !std::isfinite(v)) {
    throw ConfigError(name, "'" + text + "' is not a number");
  }
  if (v < min || v > max) {
    throw ConfigError(name, "must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", not " + text);
  }
  return v;
}

bool parse_bool(const char* name, const std::string& text) {
  std::string s;
  for (char c : text) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "on") return true;
  if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "off") return false;
  throw ConfigError(name, "'" + text + "' is not a boolean (true/false)");
}

void require_http_url(const char* name, const std::string& url) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw ConfigError(name, "'" + url + "' is not an http:// or https:// URL");
  }
  if (url.find_first_of(" \t\r\n") != std::string::npos) {
    throw ConfigError(name, "URL contains whitespace");
  }
}

std::string read_file(const char* setting, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(setting, "cannot read " + path.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

EnvLookup process_env() {
  return [](const char* name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name)) return std::string(v);
    return std::nullopt;
  };
}

Config load_config(const EnvLookup& env) {
  Config c;
  if (auto v = get(env, "MIDAS_BACKEND_URL")) c.backend_url = *v;
  if (auto v = get(env, "REDIS_URL")) {
    if (!v->starts_with("redis://")) throw ConfigError("REDIS_URL", "must start with redis://");
    c.redis_url = *v;
  }
  if (auto v = get(env, "HERMES_URL")) {
    require_http_url("HERMES_URL", *v);
    c.hermes_url = *v;
  }
  if (auto v = get(env, "HADES_URL")) {
    require_http_url("HADES_URL", *v);
    c.hades_url = *v;
  }
  if (auto v = get(env, "AES_KEY")) {
    c.aes_key = *v;
  } else if (auto f = get(env, "AES_KEY_FILE")) {
    c.aes_key = read_file("AES_KEY_FILE", *f);
    while (!c.aes_key.empty() && (c.aes_key.back() == '\n' || c.aes_key.back() == '\r')) {
      c.aes_key.pop_back();
    }
    if (c.aes_key.empty()) throw ConfigError("AES_KEY_FILE", "the file is empty");
  } else {
    throw ConfigError("AES_KEY",
                      "required: the raw key that credentials are encrypted with (or set "
                      "AES_KEY_FILE to a file holding it)");
  }
  if (auto v = get(env, "DEV_HOST")) c.host = *v;
  if (auto v = get(env, "DEV_PORT")) c.port = static_cast<int>(parse_int("DEV_PORT", *v, 0, 65535));
  if (auto v = get(env, "LOG_LEVEL")) {
    auto l = parse_level(*v);
    if (!l)
      throw ConfigError("LOG_LEVEL", "'" + *v + "' is not one of debug, info, warning, error");
    c.log_level = *l;
  }
  if (auto v = get(env, "LOG_JSON")) c.log_json = parse_bool("LOG_JSON", *v);
  if (auto v = get(env, "RETRY_BACKOFF_BASE")) {
    c.retry_backoff_base = parse_double("RETRY_BACKOFF_BASE", *v, 1, 100);
  }
  if (auto v = get(env, "RETRY_UNIT_SECONDS")) {
    c.retry_unit_seconds = parse_double("RETRY_UNIT_SECONDS", *v, 0.001, 86400);
  }
  if (auto v = get(env, "MAX_RETRY_COUNT")) {
    c.max_retry_count = static_cast<int>(parse_int("MAX_RETRY_COUNT", *v, 0, 100));
  }
  if (auto v = get(env, "WORKER_CONCURRENCY")) {
    c.worker_concurrency = static_cast<int>(parse_int("WORKER_CONCURRENCY", *v, 0, 1024));
  }
  if (auto v = get(env, "MAX_CALLBACK_RETRY_COUNT")) {
    c.max_callback_retry_count =
        static_cast<int>(parse_int("MAX_CALLBACK_RETRY_COUNT", *v, 0, 100));
  }
  if (auto v = get(env, "WORKER_LEASE_SECONDS")) {
    c.worker_lease_seconds = parse_double("WORKER_LEASE_SECONDS", *v, 0.5, 3600);
  }
  if (auto v = get(env, "TASK_RETENTION_SECONDS")) {
    c.task_retention_seconds = parse_int("TASK_RETENTION_SECONDS", *v, 0, 10LL * 366 * 86400);
  }
  if (auto v = get(env, "CALLBACK_MAX_AGE_SECONDS")) {
    c.callback_max_age_seconds =
        static_cast<int>(parse_int("CALLBACK_MAX_AGE_SECONDS", *v, 1, 86400));
  }
  if (auto v = get(env, "HTTP_THREADS")) {
    c.http_threads = static_cast<int>(parse_int("HTTP_THREADS", *v, 1, 1024));
  }
  if (auto v = get(env, "PUBLISH_QUEUE_CAPACITY")) {
    c.publish_queue_capacity =
        static_cast<std::size_t>(parse_int("PUBLISH_QUEUE_CAPACITY", *v, 1, 10'000'000));
  }
  if (auto v = get(env, "PUBLISH_THREADS")) {
    c.publish_threads = static_cast<int>(parse_int("PUBLISH_THREADS", *v, 1, 64));
  }
  if (auto v = get(env, "SERVICE_API_KEY")) c.service_api_key = *v;
  if (auto v = get(env, "MOCK_SLOW_USER_SECONDS")) {
    c.mock_slow_user_delay = std::chrono::milliseconds{
        std::llround(parse_double("MOCK_SLOW_USER_SECONDS", *v, 0, 3600) * 1000)};
  }
  if (auto v = get(env, "MERCHANT_CONFIG")) {
    c.merchant_config_path = *v;
    c.merchants = load_merchant_config(*v);
  }
  return c;
}

std::map<std::string, MerchantConfig, std::less<>> load_merchant_config(
    const std::filesystem::path& file) {
  const std::string text = read_file("MERCHANT_CONFIG", file);
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw ConfigError("MERCHANT_CONFIG", file.string() + " is not valid JSON");
  if (!j.is_object()) {
    throw ConfigError("MERCHANT_CONFIG", file.string() + " must be a JSON object keyed by slug");
  }
  std::map<std::string, MerchantConfig, std::less<>> out;
  for (const auto& item : j.items()) {
    // Named, not a structured binding: clang 14 (the fuzz preset) cannot capture those.
    const std::string& slug = item.key();
    const nlohmann::json& entry = item.value();
    const std::string where = "MERCHANT_CONFIG " + slug;
    if (!entry.is_object()) throw ConfigError(where, "must be an object");
    MerchantConfig m;
    auto str = [&](const char* key) -> std::optional<std::string> {
      auto it = entry.find(key);
      if (it == entry.end() || it->is_null()) return std::nullopt;
      if (!it->is_string()) throw ConfigError(where + "." + key, "must be a string");
      return it->get<std::string>();
    };
    auto url = str("merchant_url");
    if (!url) throw ConfigError(where + ".merchant_url", "required");
    require_http_url((where + ".merchant_url").c_str(), *url);
    m.merchant_url = *url;
    m.security_type = str("security_type").value_or("open_auth");
    if (m.security_type != "rsa" && m.security_type != "open_auth") {
      throw ConfigError(where + ".security_type", "must be \"rsa\" or \"open_auth\"");
    }
    if (auto pem = str("public_key_pem")) {
      m.public_key_pem = *pem;
    } else if (auto f = str("public_key_file")) {
      std::filesystem::path p = *f;
      if (p.is_relative()) p = file.parent_path() / p;
      m.public_key_pem = read_file((where + ".public_key_file").c_str(), p);
    }
    if (m.security_type == "rsa" && m.public_key_pem.find("-----BEGIN") == std::string::npos) {
      throw ConfigError(where + ".public_key_pem",
                        "security_type rsa needs a PEM public key (public_key_pem or "
                        "public_key_file)");
    }
    m.callback_url = str("callback_url").value_or("");
    for (const char* key : {"timeout_seconds", "backoff_factor_seconds", "max_retries"}) {
      auto it = entry.find(key);
      if (it != entry.end() && !it->is_number()) {
        throw ConfigError(where + "." + key, "must be a number");
      }
      if (it != entry.end() && it->get<double>() < 0) {
        throw ConfigError(where + "." + key, "must not be negative");
      }
    }
    for (const auto& [k, v] : entry.items()) {
      if (k != "merchant_url" && k != "security_type" && k != "public_key_pem" &&
          k != "public_key_file" && k != "callback_url") {
        m.extra[k] = v;
      }
    }
    out.emplace(slug, std::move(m));
  }
  return out;
}

HttpSettings http_settings_of(const MerchantConfig& merchant) {
  HttpSettings s;
  const auto& e = merchant.extra;
  if (auto it = e.find("timeout_seconds"); it != e.end() && it->is_number()) {
    s.timeout = std::chrono::milliseconds{std::llround(it->get<double>() * 1000)};
  }
  if (auto it = e.find("max_retries"); it != e.end() && it->is_number()) {
    s.max_retries = static_cast<int>(it->get<double>());
  }
  if (auto it = e.find("backoff_factor_seconds"); it != e.end() && it->is_number()) {
    s.backoff_factor = std::chrono::milliseconds{std::llround(it->get<double>() * 1000)};
  }
  return s;
}

std::string environment_help() {
  return R"(Environment (empty values count as unset; a missing or invalid setting stops start-up):
  AES_KEY                 required: raw key of the AES-256-CBC credentials (SHA-256 of it is the key)
  AES_KEY_FILE            file holding the key, used when AES_KEY is unset (trailing newline ignored)
  MIDAS_BACKEND_URL       task backend: memory:// (default), redis://..., postgresql://... (--backend)
  REDIS_URL               redis://... for the login retry limit (in process for now; see the log)
  HERMES_URL              Hermes base URL, e.g. http://127.0.0.1:9100/hermes; unset: no status publishing
  HADES_URL               Hades base URL, e.g. http://127.0.0.1:9100/hades; unset: no balance publishing
  SERVICE_API_KEY         sent to Hermes/Hades as "Authorization: token <key>" when set
  DEV_HOST, DEV_PORT      listen address, default 0.0.0.0:8000 (--host, --port; port 0 = any free port)
  LOG_LEVEL               debug, info (default), warning, error
  LOG_JSON                true (default): one JSON object a line on stderr; false: text lines
  MERCHANT_CONFIG         JSON file of the HTTP agents' merchants (merchant_url, security_type,
                          public_key_pem/public_key_file, callback_url, timeout_seconds, max_retries,
                          backoff_factor_seconds); unset: HTTP agents answer 536 Configuration error
  MIDAS_DATA_DIR          directory of mock_users.json, mock_cards.json, errors.json (default: next to
                          the executable, then the installed share directory)
  RETRY_BACKOFF_BASE      join retry backoff base (default 3): retry n waits base^n x unit
  RETRY_UNIT_SECONDS      join retry unit in seconds, fractions allowed (default 60)
  MAX_RETRY_COUNT         join retries after the first attempt (default 3: 4 attempts)
  MAX_CALLBACK_RETRY_COUNT joins scheduled again after a merchant callback's JOIN_ERROR (3)
  WORKER_CONCURRENCY      join task workers in this process (default 4; 0 = none: run
                          `midas-api worker` processes instead)
  WORKER_LEASE_SECONDS    lease of a running join task (default 8): a crashed worker's task runs
                          again about this long after the crash
  CALLBACK_MAX_AGE_SECONDS merchant callbacks whose X-REQ-TIMESTAMP is further off are refused (120)
  TASK_RETENTION_SECONDS  finished join tasks are kept this long, then pruned by the processes
                          that run workers (default 604800: 7 days; 0 = never)
  HTTP_THREADS            request threads (default 32); each keep-alive connection holds one while
                          open, so more concurrent connections than this wait
  PUBLISH_QUEUE_CAPACITY  Hermes/Hades calls waiting to be sent before new ones are dropped (10000)
  PUBLISH_THREADS         threads sending Hermes/Hades calls (2)
  MOCK_SLOW_USER_SECONDS  login delay of the mock "slow" users 999000-999004 (default 60)
)";
}

}  // namespace midas_api
