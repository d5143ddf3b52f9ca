// SPDX-License-Identifier: MIT
#pragma once
// In-process midas-api for tests: the real Services and routes on a free loopback port, driven
// with cpp-httplib's client. Plus a recording Hermes/Hades stub.

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "crypto/credentials.hpp"
#include "http/app.hpp"
#include "logging.hpp"

namespace midas_api::testing {

inline constexpr const char* kTestKey = "test-aes-key";

/// The credentials `c` encrypted with the test key.
inline std::string enc(const nlohmann::json& c, const std::string& key = kTestKey) {
  auto e = crypto::encrypt_credentials(c, key);
  REQUIRE(e.has_value());
  return *e;
}

/// A Config for tests: test key, source data dir, small pools, no Hermes/Hades.
inline Config test_config() {
  Config c;
  c.aes_key = kTestKey;
  c.data_dir = MIDAS_API_DATA_SOURCE_DIR;
  c.http_threads = 4;
  c.publish_threads = 1;
  c.mock_slow_user_delay = std::chrono::milliseconds{0};
  return c;
}

/// One running midas-api. Logs go to `log_text` (a string stream) so tests can read them.
class TestApp {
 public:
  explicit TestApp(Config config = test_config(),
                   const std::function<void(Services&)>& customize = {})
      : logger_(Level::debug, true, [this](std::string_view line) {
          std::lock_guard lock(log_mutex_);
          log_text_ += line;
        }) {
    auto services = build_services(std::move(config), logger_);
    if (customize) customize(*services);
    server_ = std::make_unique<Server>(std::move(services), "127.0.0.1", 0);
    server_->start();
  }
  ~TestApp() { server_->stop(); }

  [[nodiscard]] int port() const { return server_->port(); }
  [[nodiscard]] Services& services() { return server_->services(); }
  [[nodiscard]] httplib::Client client() const {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(std::chrono::seconds{30});
    return c;
  }
  /// Everything logged so far.
  [[nodiscard]] std::string log_text() {
    std::lock_guard lock(log_mutex_);
    return log_text_;
  }

  /// GET `path` with query `params` (URL-encoded by the client).
  httplib::Result get(const std::string& path, const httplib::Params& params = {},
                      const httplib::Headers& headers = {}) {
    auto c = client();
    return c.Get(path, params, headers);
  }

 private:
  std::mutex log_mutex_;
  std::string log_text_;
  Logger logger_;
  std::unique_ptr<Server> server_;
};

/// GET /{slug}/{endpoint} with the usual parameters.
inline httplib::Result query(TestApp& app, const std::string& slug, const nlohmann::json& creds,
                             std::int64_t scheme_account_id = 1,
                             const std::string& endpoint = "balance") {
  return app.get("/" + slug + "/" + endpoint,
                 {{"credentials", enc(creds)},
                  {"scheme_account_id", std::to_string(scheme_account_id)},
                  {"user_set", "1,2"}});
}

/// The body of `r` as JSON (discarded when not JSON).
inline nlohmann::json body_of(const httplib::Result& r) {
  REQUIRE(r);
  return nlohmann::json::parse(r->body, nullptr, false);
}

/// A recorded call to the stub.
struct StubCall {
  std::string method;
  std::string path;
  std::string body;
  std::string transaction;
};

/// Hermes and Hades in one: records every call, answers `status`, optionally slowly.
class HermesStub {
 public:
  explicit HermesStub(int status = 200, std::chrono::milliseconds delay = {})
      : status_(status), delay_(delay) {
    auto record = [this](const httplib::Request& req, httplib::Response& res) {
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      {
        std::lock_guard lock(mutex_);
        calls_.push_back({req.method, req.path, req.body, req.get_header_value("transaction")});
      }
      res.status = status_;
      res.set_content("{}", "application/json");
    };
    server_.Post(".*", record);
    server_.Put(".*", record);
    server_.Delete(".*", record);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 2000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
  }
  ~HermesStub() {
    server_.stop();
    thread_.join();
  }
  [[nodiscard]] std::string url(const std::string& prefix) const {
    return "http://127.0.0.1:" + std::to_string(port_) + prefix;
  }
  [[nodiscard]] std::vector<StubCall> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  /// The calls whose path is `path` (method too when given).
  [[nodiscard]] std::vector<StubCall> calls_to(const std::string& path,
                                               const std::string& method = {}) {
    std::vector<StubCall> out;
    for (auto& c : calls()) {
      if (c.path == path && (method.empty() || c.method == method)) out.push_back(c);
    }
    return out;
  }

 private:
  int status_;
  std::chrono::milliseconds delay_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<StubCall> calls_;
};

}  // namespace midas_api::testing
