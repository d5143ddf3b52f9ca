// SPDX-License-Identifier: MIT
#pragma once

/// Helpers of the end-to-end tests: start a program on a free loopback port (`--port 0`), read the
/// URL from its first stdout line, talk to it with cpp-httplib, and always stop it (RAII; the
/// child also gets SIGKILL if the test process dies first).

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace e2e {

using nlohmann::json;

/// A child process that is stopped (SIGTERM, then SIGKILL after 5 s) when this object dies.
class Process {
 public:
  /** Starts `argv` with the current environment plus `env` (a value of nullopt-like "" is kept;
   *  names listed in `unset` are removed), stderr appended to `log_path`. Waits up to 30 s for the
   *  first stdout line ("listening on http://HOST:PORT") and throws if it does not come. */
  Process(std::vector<std::string> argv, std::vector<std::pair<std::string, std::string>> env,
          std::string log_path, std::vector<std::string> unset = {})
      : log_path_(std::move(log_path)) {
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      bool drop = false;
      for (const auto& u : unset) drop = drop || u == name;
      for (const auto& [k, v] : env) drop = drop || k == name;
      if (!drop) environment.push_back(std::move(entry));
    }
    for (const auto& [k, v] : env) environment.push_back(k + "=" + v);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::vector<char*> cenv;
    for (auto& e : environment) cenv.push_back(e.data());
    cenv.push_back(nullptr);

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const int err = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0) throw std::runtime_error("cannot open " + log_path_);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {  // child: async-signal-safe calls only, then exec
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      dup2(out[1], STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(cargv[0], cargv.data(), cenv.data());
      _exit(127);
    }
    close(out[1]);
    close(err);
    stdout_fd_ = out[0];
    first_line_ = read_first_line(std::chrono::seconds{30});
    const auto at = first_line_.find("http://");
    if (at == std::string::npos) {
      stop();
      throw std::runtime_error("no URL in the first line of " + argv[0] + ": \"" + first_line_ +
                               "\"; log: " + log_tail());
    }
    url_ = first_line_.substr(at);
    while (!url_.empty() && (url_.back() == '\r' || url_.back() == ' ')) url_.pop_back();
    drain_ = std::thread([fd = stdout_fd_] {  // keep the pipe from filling up
      char buf[4096];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    });
  }

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() { stop(); }

  /// "http://127.0.0.1:PORT".
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  /// The port of url().
  [[nodiscard]] int port() const { return std::stoi(url_.substr(url_.rfind(':') + 1)); }
  /// The child's pid (0 once stopped).
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// The line the program printed first.
  [[nodiscard]] const std::string& first_line() const noexcept { return first_line_; }

  /// The last `bytes` of the stderr log.
  [[nodiscard]] std::string log_tail(std::size_t bytes = 4000) const {
    std::ifstream in(log_path_);
    std::stringstream s;
    s << in.rdbuf();
    std::string all = s.str();
    return all.size() > bytes ? all.substr(all.size() - bytes) : all;
  }

  /// SIGTERM, wait up to 5 s, then SIGKILL; returns the wait status (or -1 if already stopped).
  int stop() {
    int status = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{5};
      while (true) {
        const pid_t r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || r < 0) break;
        if (std::chrono::steady_clock::now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
      }
      pid_ = 0;
    }
    if (drain_.joinable()) drain_.join();
    if (stdout_fd_ >= 0) {
      close(stdout_fd_);
      stdout_fd_ = -1;
    }
    return status;
  }

 private:
  std::string read_first_line(std::chrono::seconds timeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return line;
      pollfd p{stdout_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return line;
      char c = 0;
      const ssize_t n = read(stdout_fd_, &c, 1);
      if (n <= 0 || c == '\n') return line;
      line += c;
    }
  }

  std::string log_path_;
  pid_t pid_ = 0;
  int stdout_fd_ = -1;
  std::string first_line_;
  std::string url_;
  std::thread drain_;
};

/// An HTTP answer: status (0 when the request failed), body, and the body as JSON (null if not).
struct Reply {
  int status = 0;
  std::string body{};
  json json_body{};
  httplib::Headers headers{};
  std::string error{};  ///< httplib's error when status is 0.
};

inline Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  out.json_body = json::parse(r->body, nullptr, false);
  if (out.json_body.is_discarded()) out.json_body = nullptr;
  return out;
}

/// A client for one base URL, with short timeouts.
class Http {
 public:
  explicit Http(std::string base_url, std::chrono::seconds timeout = std::chrono::seconds{20})
      : client_(std::move(base_url)) {
    client_.set_connection_timeout(timeout);
    client_.set_read_timeout(timeout);
    client_.set_write_timeout(timeout);
  }
  Reply get(const std::string& path, const httplib::Headers& headers = {}) {
    return to_reply(client_.Get(path.c_str(), headers));
  }
  Reply del(const std::string& path) { return to_reply(client_.Delete(path.c_str())); }
  Reply post(const std::string& path, const json& body, const httplib::Headers& headers = {}) {
    return to_reply(client_.Post(path.c_str(), headers, body.dump(), "application/json"));
  }
  Reply post_text(const std::string& path, const std::string& body, const std::string& content_type,
                  const httplib::Headers& headers = {}) {
    return to_reply(client_.Post(path.c_str(), headers, body, content_type.c_str()));
  }

 private:
  httplib::Client client_;
};

/// Polls `ready` every 20 ms until it is true or `timeout` passes; returns its last value.
inline bool eventually(const std::function<bool()>& ready,
                       std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return true;
}

/// A log file path for one test program's child processes, in the build tree.
inline std::string log_path(const std::string& name) {
  return std::string(MIDAS_E2E_LOG_DIR) + "/" + name + "." + std::to_string(getpid()) + ".log";
}

/// The contents of a file (throws if it cannot be read).
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for query strings).
inline std::string url_encode(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

/// Starts midas-mock-merchant on a free port with extra arguments.
inline std::unique_ptr<Process> start_mock_merchant(std::vector<std::string> extra_args = {},
                                                    const std::string& log_name = "mock_merchant") {
  std::vector<std::string> argv{MIDAS_MOCK_MERCHANT_BIN, "--port", "0"};
  for (auto& a : extra_args) argv.push_back(std::move(a));
  return std::make_unique<Process>(
      std::move(argv), std::vector<std::pair<std::string, std::string>>{}, log_path(log_name),
      std::vector<std::string>{"MOCK_MERCHANT_PORT", "MOCK_MERCHANT_CALLBACK_URL",
                               "MOCK_MERCHANT_API_KEY"});
}

}  // namespace e2e
