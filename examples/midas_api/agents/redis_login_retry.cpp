// SPDX-License-Identifier: MIT
#include "agents/redis_login_retry.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <stdexcept>
#include <vector>

namespace midas_api {

struct RedisLoginRetryStore::Reply {
  redisReply* r = nullptr;
  ~Reply() { freeReplyObject(r); }
};

namespace {

int to_int(std::string_view s, int fallback) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size() ? v : fallback;
}

}  // namespace

RedisLoginRetryStore::RedisLoginRetryStore(const std::string& url, Warn warn)
    : warn_{std::move(warn)} {
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) throw std::invalid_argument("REDIS_URL must start with redis://");
  std::string_view rest = std::string_view{url}.substr(scheme.size());
  if (auto q = rest.find('?'); q != std::string_view::npos) rest = rest.substr(0, q);
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) db_ = to_int(db, -1);
    if (db_ < 0) throw std::invalid_argument("REDIS_URL: the database must be a number");
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    password_ = std::string{colon == std::string_view::npos ? auth : auth.substr(colon + 1)};
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    port_ = to_int(rest.substr(colon + 1), -1);
    rest = rest.substr(0, colon);
    if (port_ <= 0 || port_ > 65535) throw std::invalid_argument("REDIS_URL: bad port");
  }
  host_ = rest.empty() ? "127.0.0.1" : std::string{rest};
}

RedisLoginRetryStore::~RedisLoginRetryStore() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

std::unique_ptr<RedisLoginRetryStore::Reply> RedisLoginRetryStore::command(
    std::initializer_list<std::string> args) {
  std::lock_guard lock{mutex_};
  auto fail = [&](const std::string& why) -> std::unique_ptr<Reply> {
    if (warn_) warn_("login retry store: " + why + "; logins are not limited until Redis answers");
    if (ctx_ != nullptr) redisFree(ctx_);  // an errored context is never reused
    ctx_ = nullptr;
    return nullptr;
  };
  if (ctx_ == nullptr) {
    const timeval timeout{2, 0};
    ctx_ = redisConnectWithTimeout(host_.c_str(), port_, timeout);
    if (ctx_ == nullptr || ctx_->err != 0) {
      return fail("cannot reach redis at " + host_ + ":" + std::to_string(port_) + ": " +
                  (ctx_ ? ctx_->errstr : "out of memory"));
    }
    redisSetTimeout(ctx_, timeout);
    if (!password_.empty()) {
      Reply auth{static_cast<redisReply*>(redisCommand(ctx_, "AUTH %s", password_.c_str()))};
      if (auth.r == nullptr || auth.r->type == REDIS_REPLY_ERROR) return fail("AUTH failed");
    }
    if (db_ != 0) {
      Reply select{static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", db_))};
      if (select.r == nullptr || select.r->type == REDIS_REPLY_ERROR) return fail("SELECT failed");
    }
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto reply = std::make_unique<Reply>();
  reply->r = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply->r == nullptr) return fail(std::string{"connection lost: "} + ctx_->errstr);
  if (reply->r->type == REDIS_REPLY_ERROR) {
    std::string why{reply->r->str, reply->r->len};
    if (warn_) warn_("login retry store: redis answered " + why);
    return nullptr;
  }
  return reply;
}

int RedisLoginRetryStore::count(const std::string& key) {
  auto reply = command({"GET", key});
  if (!reply || reply->r->type != REDIS_REPLY_STRING) return 0;
  return to_int(std::string_view{reply->r->str, reply->r->len}, 0);
}

void RedisLoginRetryStore::increment(const std::string& key) { (void)command({"INCR", key}); }

void RedisLoginRetryStore::max_out(const std::string& key, int limit, std::chrono::seconds ttl) {
  (void)command({"SET", key, std::to_string(limit), "EX", std::to_string(ttl.count())});
}

}  // namespace midas_api
