// SPDX-License-Identifier: MIT
#pragma once
/// The mock merchant's state and request handling: an Iceland-style merchant API, Hermes and Hades
/// stubs, the call recorder and fault injection. Transport-free: `handle()` takes a parsed request,
/// so main.cpp owns the server and the signals.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace mock_merchant {

class Signer;

/// One JSON object a line on stderr; thread-safe.
void log_line(const std::string& level, const std::string& event, nlohmann::json fields = {});

/// Settings taken from the command line (see main.cpp).
struct Options {
  std::string users_json{};       ///< The customer store (data/users.json format).
  std::string private_key_pem{};  ///< Signs join callbacks.
  std::string callback_url{};     ///< Overrides the join request's callback_url when set.
  std::chrono::milliseconds callback_delay{500};  ///< Join accepted -> callback sent.
  std::string api_key{};          ///< When set, /merchant/* needs `Authorization: Token <key>`.
  std::size_t max_calls = 10000;  ///< Recorded calls kept (oldest dropped first).
};

/// A rule of POST /_faults: the next `times` requests whose path starts with `path_prefix` fail.
struct Fault {
  std::int64_t id = 0;
  std::string path_prefix{};
  std::string method{};  ///< Empty: any method.
  int status = 0;        ///< 0: no status fault (only the delay, then normal handling).
  int times = 1;         ///< Remaining matches; -1 means every match, until DELETE /_faults.
  std::int64_t delay_ms = 0;
  bool drop_connection = false;
  std::optional<nlohmann::json> body{};  ///< Response body; default {"error": "injected fault"}.
  /// /merchant/join only: accept the join as usual, but its callback reports this error code
  /// (e.g. JOIN_ERROR) and no customer is created.
  std::string callback_error_code{};
};

/// A customer of the merchant.
struct User {
  std::string card_number{};
  std::string barcode{};
  std::string merchant_scheme_id2{};
  std::string last_name{};
  std::string postcode{};
  std::string email{};
  nlohmann::json balance = 0;
  nlohmann::json transactions = nlohmann::json::array();
  std::string login_error{};  ///< A merchant error code every login of this card answers.
};

/// The whole mock: thread-safe, one instance per process.
class MockMerchant {
 public:
  /// Parses the users and the key; throws std::runtime_error naming what is wrong.
  explicit MockMerchant(Options options);
  ~MockMerchant();
  MockMerchant(const MockMerchant&) = delete;
  MockMerchant& operator=(const MockMerchant&) = delete;

  /// Answers any request (installed for every method and path).
  void handle(const httplib::Request& req, httplib::Response& res);
  /// Stops the callback thread and wakes delayed requests; idempotent.
  void stop();

 private:
  struct PendingCallback {
    std::string url{};
    std::string body{};
  };

  void record_call(const httplib::Request& req, const std::optional<Fault>& fault);
  std::optional<Fault> take_fault(const httplib::Request& req);
  /// Applies a fault; true when the request is answered (or dropped) by it.
  bool apply_fault(const Fault& fault, const httplib::Request& req, httplib::Response& res);
  void handle_admin(const httplib::Request& req, httplib::Response& res);
  void handle_login(const httplib::Request& req, httplib::Response& res);
  void handle_join(const httplib::Request& req, httplib::Response& res,
                   const std::string& callback_error_code);
  void handle_stub(const std::string& service, const httplib::Request& req, httplib::Response& res);
  void add_faults(const httplib::Request& req, httplib::Response& res);
  void send_callback_now(const httplib::Request& req, httplib::Response& res);
  void load_users();
  /// Sleeps up to `d`, returning early when stopping.
  void interruptible_sleep(std::chrono::milliseconds d);
  void callback_loop();
  /// POSTs a signed callback; returns the record appended to /_callbacks.
  nlohmann::json deliver_callback(const std::string& url, const std::string& body,
                                  std::int64_t timestamp, const std::string& signature);

  Options options_;
  std::unique_ptr<Signer> signer_;
  std::string ghost_card_prefix_{};

  std::mutex mutex_;  // guards everything below
  std::vector<User> users_;
  std::vector<nlohmann::json> calls_;
  std::int64_t call_seq_ = 0;
  std::vector<Fault> faults_;
  std::int64_t fault_seq_ = 0;
  std::vector<nlohmann::json> callbacks_;
  std::uint64_t joined_ = 0;
  std::multimap<std::chrono::steady_clock::time_point, PendingCallback> pending_;
  bool stopping_ = false;
  std::condition_variable wake_;

  std::thread callback_thread_;
};

}  // namespace mock_merchant
