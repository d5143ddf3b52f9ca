// SPDX-License-Identifier: MIT
#include "hermes/publisher.hpp"

#include <httplib.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <stdexcept>

namespace midas_api {

std::pair<std::string, std::string> split_base_url(std::string_view url) {
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) throw std::invalid_argument("no scheme in URL");
  std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") throw std::invalid_argument("not an http(s) URL");
  std::size_t path_start = url.find('/', scheme_end + 3);
  std::string origin(url.substr(0, path_start));
  std::string prefix =
      path_start == std::string_view::npos ? "" : std::string(url.substr(path_start));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (origin.size() <= scheme_end + 3) throw std::invalid_argument("no host in URL");
  return {origin, prefix};
}

/// One sending thread's clients, one per target (httplib clients are not shared by threads).
struct ClientCache {
  std::map<std::string, std::unique_ptr<httplib::Client>, std::less<>> clients;
};

namespace {

std::string user_agent() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "Midas";
  return std::string("Midas on ") + host;
}

}  // namespace

Publisher::Publisher(PublisherOptions options, const Logger& log, Metrics& metrics)
    : options_(std::move(options)), log_(log), metrics_(metrics) {
  if (!options_.hermes_url.empty()) {
    auto [o, p] = split_base_url(options_.hermes_url);
    hermes_ = {o, p};
  }
  if (!options_.hades_url.empty()) {
    auto [o, p] = split_base_url(options_.hades_url);
    hades_ = {o, p};
  }
  if (options_.threads < 1) options_.threads = 1;
  if (!hermes_.origin.empty() || !hades_.origin.empty()) {
    for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { run(); });
  }
}

Publisher::~Publisher() { stop(); }

bool Publisher::enabled(std::string_view target) const noexcept {
  if (target == "hermes") return !hermes_.origin.empty();
  if (target == "hades") return !hades_.origin.empty();
  return false;
}

bool Publisher::submit(OutboundCall call) {
  if (!enabled(call.target)) return false;
  {
    const std::lock_guard lock(mutex_);
    if (accepting_ && queue_.size() < options_.capacity) {
      queue_.push_back(std::move(call));
      cv_.notify_one();
      return true;
    }
  }
  metrics_.publish(call.target, "dropped");
  std::size_t dropped = 0;
  {
    const std::lock_guard lock(mutex_);
    ++dropped_unlogged_;
    const auto now = std::chrono::steady_clock::now();
    if (drop_logged_at_ != std::chrono::steady_clock::time_point{} &&
        now - drop_logged_at_ < std::chrono::seconds{10}) {
      return false;
    }
    drop_logged_at_ = now;
    dropped = std::exchange(dropped_unlogged_, 0);
  }
  log_.warning(
      "publish queue full or stopped: calls dropped (logged at most every 10 s; "
      "midas_api_publish_total{outcome=\"dropped\"} counts them all)",
      {{"dropped_since_last_line", dropped},
       {"target", call.target},
       {"method", call.method},
       {"path", call.path},
       {"transaction", call.tid}});
  return false;
}

bool Publisher::deliver(const OutboundCall& call) {
  if (!enabled(call.target)) return true;  // nothing to send: not a failure
  ClientCache clients;
  return send(call, clients);
}

std::size_t Publisher::depth() const {
  const std::lock_guard lock(mutex_);
  return queue_.size();
}

bool Publisher::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
}

void Publisher::stop(std::chrono::milliseconds drain) {
  // Concurrent callers (a signal thread and main) wait for the first one to finish.
  std::call_once(stop_once_, [this, drain] { stop_once(drain); });
}

void Publisher::stop_once(std::chrono::milliseconds drain) {
  {
    std::unique_lock lock(mutex_);
    accepting_ = false;
    if (!threads_.empty()) {
      idle_cv_.wait_for(lock, drain, [this] { return queue_.empty() && in_flight_ == 0; });
    }
    stopping_ = true;
    if (!queue_.empty()) {
      log_.warning("publisher stopped with calls unsent", {{"dropped", queue_.size()}});
      for (const auto& c : queue_) metrics_.publish(c.target, "dropped");
      queue_.clear();
    }
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Publisher::run() {
  ClientCache clients;
  for (;;) {
    OutboundCall call;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      call = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
    }
    (void)send(call, clients);  // failures are logged and counted there
    {
      const std::lock_guard lock(mutex_);
      --in_flight_;
      if (queue_.empty() && in_flight_ == 0) idle_cv_.notify_all();
    }
  }
}

bool Publisher::send(const OutboundCall& call, ClientCache& cache) {
  try {
    return send_once(call, cache);
  } catch (const std::exception& e) {
    metrics_.publish(call.target, "failed");
    log_.warning("publish failed",
                 {{"target", call.target}, {"path", call.path}, {"error", e.what()}});
  } catch (...) {
    metrics_.publish(call.target, "failed");
  }
  return false;
}

bool Publisher::send_once(const OutboundCall& call, ClientCache& cache) {
  const Base& base = call.target == "hermes" ? hermes_ : hades_;
  auto& client = cache.clients[call.target];
  if (!client) {
    client = std::make_unique<httplib::Client>(base.origin);
    client->set_connection_timeout(options_.connect_timeout);
    client->set_read_timeout(options_.read_timeout);
    client->set_write_timeout(options_.read_timeout);
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);  // small requests on kept-alive connections: no Nagle delay
  }
  httplib::Headers headers{{"transaction", call.tid}, {"User-Agent", user_agent()}};
  if (!options_.service_api_key.empty()) {
    headers.emplace("Authorization", "token " + options_.service_api_key);
  }
  const std::string path = base.prefix + call.path;
  const std::string type = "application/json";
  auto do_call = [&]() -> httplib::Result {
    if (call.method == "POST") return client->Post(path, headers, call.body, type);
    if (call.method == "PUT") return client->Put(path, headers, call.body, type);
    if (call.method == "DELETE") return client->Delete(path, headers, call.body, type);
    throw std::invalid_argument("unsupported method " + call.method);
  };
  httplib::Result r = do_call();
  if (!r) {
    metrics_.publish(call.target, "failed");
    log_.warning("publish failed", {{"target", call.target},
                                    {"method", call.method},
                                    {"path", call.path},
                                    {"transaction", call.tid},
                                    {"error", httplib::to_string(r.error())}});
    client.reset();  // a fresh connection next time
    return false;
  }
  if (r->status < 200 || r->status > 299) {
    metrics_.publish(call.target, "failed");
    log_.warning("publish answered with an error status", {{"target", call.target},
                                                           {"method", call.method},
                                                           {"path", call.path},
                                                           {"transaction", call.tid},
                                                           {"status", r->status}});
    return false;
  }
  metrics_.publish(call.target, "sent");
  log_.debug("published", {{"target", call.target},
                           {"method", call.method},
                           {"path", call.path},
                           {"status", r->status}});
  return true;
}

}  // namespace midas_api
