// SPDX-License-Identifier: MIT
// midas-mock-merchant: an Iceland-style merchant API, a Hermes/Hades stub that records every call,
// and fault injection, in one process, for local runs of midas-api and for its end-to-end tests.
// README.md beside this file documents the endpoints.

#include <httplib.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "embedded.hpp"
#include "merchant.hpp"

namespace {

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(what + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "midas-mock-merchant: a mock Iceland-style merchant API (POST /merchant/login, "
      "POST /merchant/join with a signed callback), Hermes and Hades stubs (/hermes/..., "
      "/hades/...), the call recorder (GET/DELETE /_calls) and fault injection "
      "(POST/GET/DELETE /_faults). Logs one JSON object a line on stderr; the first line on "
      "stdout is `listening on http://HOST:PORT`."};
  std::string host = "127.0.0.1";
  int port = 8100;
  std::string users_file;
  std::string key_file;
  std::string callback_url;
  long long callback_delay_ms = 500;
  std::string api_key;
  std::size_t threads = 16;
  app.add_option("--host", host, "Address to listen on")
      ->envname("MOCK_MERCHANT_HOST")
      ->capture_default_str();
  app.add_option("--port", port, "Port to listen on; 0 picks a free one")
      ->envname("MOCK_MERCHANT_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--users", users_file,
                 "Customer store (JSON, data/users.json format); default: the built-in copy")
      ->envname("MOCK_MERCHANT_USERS")
      ->check(CLI::ExistingFile);
  app.add_option("--private-key", key_file,
                 "PEM RSA private key signing join callbacks; default: the built-in test key "
                 "(keys/merchant_private.pem)")
      ->envname("MOCK_MERCHANT_PRIVATE_KEY")
      ->check(CLI::ExistingFile);
  app.add_option("--callback-url", callback_url,
                 "Where join results are POSTed (e.g. "
                 "http://127.0.0.1:8000/join/merchant/iceland-bonus-card); default: the join "
                 "request's callback_url")
      ->envname("MOCK_MERCHANT_CALLBACK_URL");
  app.add_option("--callback-delay-ms", callback_delay_ms,
                 "Delay between accepting a join and sending its callback")
      ->envname("MOCK_MERCHANT_CALLBACK_DELAY_MS")
      ->check(CLI::Range(0LL, 3600000LL))
      ->capture_default_str();
  app.add_option("--api-key", api_key,
                 "When set, /merchant/* requires `Authorization: Token <key>` (else 401)")
      ->envname("MOCK_MERCHANT_API_KEY");
  app.add_option("--threads", threads, "HTTP worker threads")
      ->envname("MOCK_MERCHANT_THREADS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Signals are taken by one thread (sigwait), so every other thread starts with them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  mock_merchant::Options options;
  try {
    options.users_json =
        users_file.empty() ? mock_merchant::embedded::users_json : read_file(users_file, "users");
    options.private_key_pem = key_file.empty() ? mock_merchant::embedded::private_key_pem
                                               : read_file(key_file, "private key");
  } catch (const std::exception& e) {
    std::cerr << "midas-mock-merchant: " << e.what() << '\n';
    return 2;
  }
  options.callback_url = callback_url;
  options.callback_delay = std::chrono::milliseconds{callback_delay_ms};
  options.api_key = api_key;

  std::unique_ptr<mock_merchant::MockMerchant> merchant;
  try {
    merchant = std::make_unique<mock_merchant::MockMerchant>(std::move(options));
  } catch (const std::exception& e) {
    std::cerr << "midas-mock-merchant: " << e.what() << '\n';
    return 2;
  }

  httplib::Server server;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_tcp_nodelay(true);  // kept-alive clients otherwise wait ~40 ms per answer (Nagle)
  server.set_payload_max_length(16 * 1024 * 1024);
  auto handler = [&merchant](const httplib::Request& req, httplib::Response& res) {
    merchant->handle(req, res);
  };
  const std::string any = ".*";
  server.Get(any, handler);
  server.Post(any, handler);
  server.Put(any, handler);
  server.Patch(any, handler);
  server.Delete(any, handler);
  server.Options(any, handler);
  server.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                                  std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    mock_merchant::log_line("error", "handler_exception", {{"path", req.path}, {"error", what}});
    res.status = 500;
    res.set_content(nlohmann::json{{"error", what}}.dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty() && res.status >= 400) {  // httplib's own errors (bad request line...)
      res.set_content(nlohmann::json{{"error", "HTTP " + std::to_string(res.status)}}.dump(),
                      "application/json");
    }
  });
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    mock_merchant::log_line("info", "request",
                            {{"method", req.method}, {"path", req.path}, {"status", res.status}});
  });

  int bound = port;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
    if (bound < 0) {
      std::cerr << "midas-mock-merchant: cannot bind " << host << " (any port)\n";
      return 1;
    }
  } else if (!server.bind_to_port(host, port)) {
    std::cerr << "midas-mock-merchant: cannot bind " << host << ':' << port << '\n';
    return 1;
  }
  const std::string shown_host = (host == "0.0.0.0" || host == "::") ? "127.0.0.1" : host;
  std::cout << "listening on http://" << shown_host << ':' << bound << std::endl;
  mock_merchant::log_line("info", "listening", {{"host", host}, {"port", bound}});

  std::thread signal_thread([&signals, &server] {
    int sig = 0;
    sigwait(&signals, &sig);
    mock_merchant::log_line("info", "stopping", {{"signal", sig}});
    server.stop();
  });

  server.listen_after_bind();
  merchant->stop();  // wakes delayed requests so the pool can drain
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // no-op when a signal already came
  signal_thread.join();
  mock_merchant::log_line("info", "stopped");
  return 0;
}
