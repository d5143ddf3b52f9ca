// SPDX-License-Identifier: MIT
// The Midas API's request handling, in process: the input is one HTTP request as it would arrive
// on the socket (request line, query string, headers, body). cpp-httplib parses it and the
// service's real routes (balance, transactions, join, callbacks, tasks...) answer it, on the
// embedded memory backend with the mock agents and no Hermes. Every request must get an answer,
// never crash the process; an exception a route did not expect (logged "unexpected error", answered
// 520) is a finding too: bad input must get its 4xx.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "config.hpp"
#include "http/app.hpp"
#include "logging.hpp"

namespace {

// A connection whose bytes are the fuzz input; what the server writes is kept.
class BufferStream final : public httplib::Stream {
 public:
  explicit BufferStream(std::string_view in) : in_{in} {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, in_.size() - pos_);
    std::copy_n(in_.data() + pos_, n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8000;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

  std::string out;

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// The service's routes on an httplib::Server that is never bound: requests go straight to
// process_request.
class FuzzServer final : public httplib::Server {
 public:
  void handle(httplib::Stream& stream) {
    bool closed = false;
    process_request(stream, /*close_connection=*/true, closed, nullptr);
  }
};

bool g_unexpected = false;
std::string g_last_error;

struct Service {
  midas_api::Logger logger{midas_api::Level::error, false, [](std::string_view line) {
                             if (line.find("unexpected error") != std::string_view::npos ||
                                 line.find("exception escaped") != std::string_view::npos) {
                               g_unexpected = true;
                               g_last_error = line;
                             }
                           }};
  std::unique_ptr<midas_api::Services> services;
  FuzzServer server;

  Service() {
    midas_api::Config c;
    c.aes_key = "midas-demo-aes-key";  // scripts/run's demo key: the seeds' credentials use it
    c.data_dir = MIDAS_API_DATA_SOURCE_DIR;
    c.http_threads = 1;
    c.publish_threads = 1;
    c.worker_concurrency = 0;  // joins are enqueued, not run: no threads behind the fuzzer
    c.mock_slow_user_delay = std::chrono::milliseconds{0};
    services = midas_api::build_services(std::move(c), logger);
    midas_api::install_routes(server, *services);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Service service;
  BufferStream stream{{reinterpret_cast<const char*>(data), size}};
  service.server.handle(stream);
  if (g_unexpected) {
    std::fprintf(stderr, "api_request: a route failed unexpectedly: %s\nanswer:\n%s\n",
                 g_last_error.c_str(), stream.out.c_str());
    std::abort();
  }
  return 0;
}
