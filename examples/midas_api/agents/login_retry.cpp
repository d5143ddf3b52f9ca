// SPDX-License-Identifier: MIT
#include "agents/login_retry.hpp"

#include <cctype>

namespace midas_api {

InProcessLoginRetryStore::InProcessLoginRetryStore(Now now) : now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
}

int InProcessLoginRetryStore::count(const std::string& key) {
  const std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return 0;
  if (it->second.expires && *it->second.expires <= now_()) {
    entries_.erase(it);
    return 0;
  }
  return it->second.count;
}

void InProcessLoginRetryStore::increment(const std::string& key) {
  const std::lock_guard lock(mutex_);
  Entry& e = entries_[key];
  if (e.expires && *e.expires <= now_()) e = Entry{};
  ++e.count;  // INCR keeps an existing TTL, as Redis does
}

void InProcessLoginRetryStore::max_out(const std::string& key, int limit,
                                       std::chrono::seconds ttl) {
  const std::lock_guard lock(mutex_);
  entries_[key] = Entry{limit, now_() + ttl};
}

std::string login_retry_key(std::string_view agent_class, std::int64_t scheme_account_id) {
  std::string key = "retry-" + std::string(agent_class) + "-" + std::to_string(scheme_account_id);
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key;
}

void login_with_limit(Agent& agent, const UserInfo& user, LoginRetryStore& store,
                      const std::function<bool(std::string_view)>& system_action_required) {
  const std::string key = login_retry_key(agent.retry_key_class(), user.scheme_account_id);
  const std::optional<int> limit = agent.retry_limit();
  if (limit) {
    if (store.count(key) >= *limit) {
      store.max_out(key, *limit, kRetryLimitTtl);
      throw AgentError(errors::retry_limit_reached);
    }
  }
  try {
    agent.login();
  } catch (const AgentError& e) {
    const bool sar = system_action_required && system_action_required(e.root().error_class());
    if (!(sar && user.from_join)) store.increment(key);
    throw;
  } catch (...) {
    store.increment(key);
    throw;  // the HTTP layer logs it and answers 520 Unknown error
  }
}

}  // namespace midas_api
