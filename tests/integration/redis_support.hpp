// SPDX-License-Identifier: MIT
#pragma once
/// Test-side helpers for the Redis backend: the server URL from the environment, unique key
/// prefixes, a raw hiredis connection (to flush scripts, delete test keys, read lists), and a
/// private redis-server the test owns (for restarts and configurations the shared one lacks).

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace midas::testing::redis {

/// MIDAS_TEST_REDIS_URL, if set and not empty.
inline std::optional<std::string> test_url() {
  const char* url = std::getenv("MIDAS_TEST_REDIS_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string{url};
}

/// A key prefix no other test uses: "midas-test.<random>.<n>".
inline std::string unique_prefix() {
  static std::atomic<int> counter{0};
  static const std::string run = [] {
    std::random_device rd;
    std::string s;
    for (int i = 0; i < 10; ++i) s += "0123456789abcdefghijklmnopqrstuvwxyz"[rd() % 36];
    return s;
  }();
  return "midas-test." + run + "." + std::to_string(counter++);
}

/// host, port, db and password of a redis:// URL in the simple forms the tests use:
/// redis://[:password@]host[:port][/db].
struct Address {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string password{};
};

inline Address parse_address(std::string url) {
  Address a;
  if (url.rfind("redis://", 0) == 0) url = url.substr(8);
  if (auto q = url.find('?'); q != std::string::npos) url = url.substr(0, q);
  if (auto at = url.rfind('@'); at != std::string::npos) {
    std::string userinfo = url.substr(0, at);
    url = url.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string::npos) {
      a.password = userinfo.substr(colon + 1);
    }
  }
  if (auto slash = url.find('/'); slash != std::string::npos) {
    std::string db = url.substr(slash + 1);
    if (!db.empty()) a.db = std::stoi(db);
    url = url.substr(0, slash);
  }
  if (auto colon = url.rfind(':'); colon != std::string::npos) {
    a.port = std::stoi(url.substr(colon + 1));
    url = url.substr(0, colon);
  }
  if (!url.empty()) a.host = url;
  return a;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

/// A plain connection for test set-up and inspection. Not thread-safe.
class RawRedis {
 public:
  explicit RawRedis(const std::string& url) : address_{parse_address(url)} { reconnect(); }

  /// True when connected (the last connect worked and no command failed since).
  [[nodiscard]] bool ok() const { return ctx_ && ctx_->err == 0; }

  void reconnect() {
    timeval tv{2, 0};
    ctx_.reset(redisConnectWithTimeout(address_.host.c_str(), address_.port, tv));
    if (!ok()) return;
    redisSetTimeout(ctx_.get(), tv);
    if (!address_.password.empty()) (void)command({"AUTH", address_.password});
    if (address_.db != 0) (void)command({"SELECT", std::to_string(address_.db)});
  }

  /// Runs a command; nullptr when the connection failed.
  Reply command(const std::vector<std::string>& args) {
    if (!ok()) return nullptr;
    std::vector<const char*> argv;
    std::vector<std::size_t> len;
    for (const auto& a : args) {
      argv.push_back(a.data());
      len.push_back(a.size());
    }
    return Reply{static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), len.data()))};
  }

  /// The elements of a list (LRANGE 0 -1).
  std::vector<std::string> list(const std::string& key) {
    std::vector<std::string> out;
    Reply r = command({"LRANGE", key, "0", "-1"});
    if (!r || r->type != REDIS_REPLY_ARRAY) return out;
    for (std::size_t i = 0; i < r->elements; ++i) {
      out.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return out;
  }

  /// The keys matching a glob pattern (SCAN, so the server is not blocked).
  std::vector<std::string> keys(const std::string& pattern) {
    std::vector<std::string> out;
    std::string cursor = "0";
    do {
      Reply r = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) break;
      cursor = std::string{r->element[0]->str, r->element[0]->len};
      const redisReply* batch = r->element[1];
      for (std::size_t i = 0; i < batch->elements; ++i) {
        out.emplace_back(batch->element[i]->str, batch->element[i]->len);
      }
    } while (cursor != "0");
    return out;
  }

  /// Deletes every key midas wrote under `prefix`; returns how many.
  std::size_t delete_prefix(const std::string& prefix) {
    std::size_t n = 0;
    for (const std::string& pattern : {"{" + prefix + ":*", prefix + ":*"}) {
      for (const auto& k : keys(pattern)) {
        Reply r = command({"UNLINK", k});
        if (r && r->type == REDIS_REPLY_INTEGER) n += static_cast<std::size_t>(r->integer);
      }
    }
    return n;
  }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
  };
  Address address_;
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
};

/// True when `redis-server` can be run here.
inline bool have_redis_server() {
  return std::system("redis-server --version >/dev/null 2>&1") == 0;
}

/// A redis-server this test starts on a port of its own, in a temp dir it deletes; killed (and
/// its data removed) when destroyed. `extra` are more command-line options.
class PrivateServer {
 public:
  PrivateServer(int port, std::vector<std::string> extra) : port_{port}, extra_{std::move(extra)} {
    char tmpl[] = "/tmp/midas-redis-test.XXXXXX";
    const char* dir = mkdtemp(tmpl);
    if (dir != nullptr) dir_ = dir;
  }
  ~PrivateServer() {
    kill();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PrivateServer(const PrivateServer&) = delete;
  PrivateServer& operator=(const PrivateServer&) = delete;

  [[nodiscard]] std::string url() const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/0";
  }
  [[nodiscard]] int port() const { return port_; }

  /// Starts the server (same dir, so its AOF is replayed) and waits until it answers PING with
  /// its data loaded. False if it did not come up within 10 s.
  bool start() {
    if (dir_.empty()) return false;
    if (RawRedis{url()}.ok()) return false;  // the port is taken by some other server
    pid_ = fork();
    if (pid_ == 0) {
      // Dies with the test, even if the test crashes; keeps the test's output pipes free.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
      }
      std::vector<std::string> args{"redis-server",
                                    "--port",
                                    std::to_string(port_),
                                    "--bind",
                                    "127.0.0.1",
                                    "--dir",
                                    dir_,
                                    "--save",
                                    "",
                                    "--daemonize",
                                    "no",
                                    "--logfile",
                                    dir_ + "/redis.log"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    if (pid_ < 0) return false;
    // Generous: under sanitizers on a loaded 2-core machine a start has taken more than 10 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (std::chrono::steady_clock::now() < deadline) {
      RawRedis r{url()};
      if (r.ok()) {
        Reply pong = r.command({"PING"});
        int status = 0;
        if (pong && pong->type == REDIS_REPLY_STATUS) return waitpid(pid_, &status, WNOHANG) == 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    std::ifstream log{dir_ + "/redis.log"};  // say why, for the test's output
    std::cerr << "redis-server on port " << port_ << " did not answer PING; its log:\n"
              << log.rdbuf() << "\n";
    return false;
  }

  /// SIGKILL: no shutdown, no final flush (what a crash does).
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  int port_;
  std::vector<std::string> extra_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace midas::testing::redis
