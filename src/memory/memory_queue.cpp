// SPDX-License-Identifier: MIT
// The in-process backend: every operation under one mutex, indexes kept beside the tasks.
#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

#include "detail/random.hpp"
#include "midas/queue.hpp"

namespace midas {
namespace {

using Id = std::uint64_t;

// Ready tasks, in claim order.
struct ReadyKey {
  int priority;
  TimePoint run_at;
  Id id;
  friend auto operator<=>(const ReadyKey&, const ReadyKey&) = default;
};

// Tasks waiting for their run_at.
struct ScheduledKey {
  TimePoint run_at;
  Id id;
  int priority;  // carried along for the ReadyKey; ids are unique, so it never decides order
  friend auto operator<=>(const ScheduledKey&, const ScheduledKey&) = default;
};

struct QueueIndex {
  std::set<ReadyKey> ready;
  std::set<ScheduledKey> scheduled;
};

struct Entry {
  Task task;
  std::string token;  // lease token while running
};

std::optional<Id> parse_id(const TaskId& id) {
  Id value = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (ec != std::errc{} || end != id.data() + id.size()) return std::nullopt;
  return value;
}

bool is_settled_status(TaskStatus s) { return s == TaskStatus::retrying || is_finished(s); }

class MemoryQueue final : public Queue {
 public:
  explicit MemoryQueue(const Clock& clock) : clock_{clock} {}

  result<Enqueued> enqueue(const TaskSpec& spec) override {
    MIDAS_TRYV(validate(spec));
    std::lock_guard lock{mutex_};
    auto out = insert(spec);
    changed();
    return out;
  }

  result<std::vector<Enqueued>> enqueue_batch(std::span<const TaskSpec> specs) override {
    for (const auto& spec : specs) {
      MIDAS_TRYV(validate(spec));
    }
    std::lock_guard lock{mutex_};
    std::vector<Enqueued> out;
    out.reserve(specs.size());
    for (const auto& spec : specs) out.push_back(insert(spec));
    changed();
    return out;
  }

  result<std::vector<ClaimedTask>> claim(const ClaimRequest& request) override {
    if (request.lease.count() <= 0) return errc::invalid_argument;
    std::lock_guard lock{mutex_};
    const TimePoint now = clock_.now();
    std::vector<ClaimedTask> out;
    for (const auto& name : request.queues) {
      auto qit = queues_.find(name);
      if (qit == queues_.end()) continue;
      QueueIndex& index = qit->second;
      promote_due(index, now);
      while (out.size() < request.limit && !index.ready.empty()) {
        Id id = index.ready.begin()->id;
        index.ready.erase(index.ready.begin());
        Entry& e = tasks_.at(id);
        e.token = detail::random_token();
        Task& t = e.task;
        t.status = TaskStatus::running;
        t.attempt += 1;
        t.lease_owner = request.worker_id;
        t.lease_expires_at = now + request.lease;
        t.updated_at = now;
        running_.insert(id);
        out.push_back(ClaimedTask{t, Lease{t.id, e.token, request.worker_id, *t.lease_expires_at}});
      }
      if (out.size() >= request.limit) break;
    }
    return out;
  }

  result<std::vector<TaskId>> heartbeat(std::span<const Lease> leases, Duration lease) override {
    std::lock_guard lock{mutex_};
    const TimePoint now = clock_.now();
    std::vector<TaskId> lost;
    for (const auto& l : leases) {
      Entry* e = leased(l);
      if (e == nullptr) {
        lost.push_back(l.id);
        continue;
      }
      e->task.lease_expires_at = now + lease;
      e->task.updated_at = now;
    }
    return lost;
  }

  result<void> settle(const Lease& lease, const Settlement& s) override {
    std::lock_guard lock{mutex_};
    return apply(lease, s, false);
  }

  result<void> rescue(const Lease& lease, const Settlement& s) override {
    std::lock_guard lock{mutex_};
    return apply(lease, s, true);
  }

  result<void> checkpoint(const Lease& lease, const nlohmann::json& progress) override {
    std::lock_guard lock{mutex_};
    Entry* e = leased(lease);
    if (e == nullptr) return errc::lease_lost;
    e->task.checkpoint = progress;
    e->task.updated_at = clock_.now();
    return success();
  }

  result<std::vector<ClaimedTask>> expired(std::span<const std::string> queues,
                                           std::size_t limit) override {
    std::lock_guard lock{mutex_};
    const TimePoint now = clock_.now();
    std::vector<ClaimedTask> out;
    for (Id id : running_) {
      const Entry& e = tasks_.at(id);
      const Task& t = e.task;
      if (t.lease_expires_at && *t.lease_expires_at < now &&
          std::find(queues.begin(), queues.end(), t.queue) != queues.end()) {
        out.push_back(
            ClaimedTask{t, Lease{t.id, e.token, t.lease_owner.value_or(""), *t.lease_expires_at}});
      }
    }
    std::sort(out.begin(), out.end(), [](const ClaimedTask& a, const ClaimedTask& b) {
      return a.lease.expires_at < b.lease.expires_at;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  result<bool> wait_for_tasks(std::span<const std::string> queues, Duration max_wait) override {
    std::unique_lock lock{mutex_};
    const std::uint64_t seen = version_;
    auto due_now = [&] {
      const TimePoint now = clock_.now();
      for (const auto& name : queues) {
        auto it = queues_.find(name);
        if (it == queues_.end()) continue;
        if (!it->second.ready.empty()) return true;
        if (!it->second.scheduled.empty() && it->second.scheduled.begin()->run_at <= now)
          return true;
      }
      return false;
    };
    if (due_now()) return true;
    return cv_.wait_for(lock, max_wait, [&] { return version_ != seen || due_now(); });
  }

  result<Task> get(const TaskId& id) override {
    std::lock_guard lock{mutex_};
    const Entry* e = find(id);
    if (e == nullptr) return errc::task_not_found;
    return e->task;
  }

  result<std::vector<Task>> list(const ListFilter& filter) override {
    std::lock_guard lock{mutex_};
    std::vector<Task> out;
    std::size_t skipped = 0;
    for (auto it = tasks_.rbegin(); it != tasks_.rend() && out.size() < filter.limit; ++it) {
      const Task& t = it->second.task;
      if (filter.queue && t.queue != *filter.queue) continue;
      if (filter.status && t.status != *filter.status) continue;
      if (filter.type && t.type != *filter.type) continue;
      if (skipped < filter.offset) {
        ++skipped;
        continue;
      }
      out.push_back(t);
    }
    return out;
  }

  result<void> cancel(const TaskId& id) override {
    std::lock_guard lock{mutex_};
    Entry* e = find(id);
    if (e == nullptr) return errc::task_not_found;
    Task& t = e->task;
    if (t.status == TaskStatus::cancelled) return success();
    if (t.status != TaskStatus::pending && t.status != TaskStatus::retrying) {
      return errc::invalid_state;
    }
    unindex(t);
    finish(t, TaskStatus::cancelled, clock_.now());
    return success();
  }

  result<void> requeue(const TaskId& id) override {
    std::lock_guard lock{mutex_};
    Entry* e = find(id);
    if (e == nullptr) return errc::task_not_found;
    Task& t = e->task;
    if (t.status != TaskStatus::failed && t.status != TaskStatus::cancelled) {
      return errc::invalid_state;
    }
    if (t.unique_key && unique_.contains({t.queue, *t.unique_key})) return errc::duplicate_task;
    const TimePoint now = clock_.now();
    t.status = TaskStatus::pending;
    t.attempt = 0;
    t.run_at = now;
    t.finished_at.reset();
    t.updated_at = now;
    if (t.unique_key) unique_[{t.queue, *t.unique_key}] = *parse_id(t.id);
    schedule(t);
    changed();
    return success();
  }

  result<std::size_t> prune(TimePoint cutoff, std::size_t limit) override {
    std::lock_guard lock{mutex_};
    std::size_t removed = 0;
    for (auto it = tasks_.begin(); it != tasks_.end() && removed < limit;) {
      const Task& t = it->second.task;
      if (is_finished(t.status) && t.finished_at && *t.finished_at < cutoff) {
        it = tasks_.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    return removed;
  }

  result<Stats> stats(const std::optional<std::string>& queue) override {
    std::lock_guard lock{mutex_};
    const TimePoint now = clock_.now();
    std::map<std::string, QueueStats> by_queue;
    for (const auto& [id, e] : tasks_) {
      const Task& t = e.task;
      if (queue && t.queue != *queue) continue;
      QueueStats& s = by_queue[t.queue];
      s.queue = t.queue;
      switch (t.status) {
        case TaskStatus::pending:
          ++s.pending;
          break;
        case TaskStatus::running:
          ++s.running;
          break;
        case TaskStatus::retrying:
          ++s.retrying;
          break;
        case TaskStatus::succeeded:
          ++s.succeeded;
          break;
        case TaskStatus::failed:
          ++s.failed;
          break;
        case TaskStatus::cancelled:
          ++s.cancelled;
          break;
      }
      if ((t.status == TaskStatus::pending || t.status == TaskStatus::retrying) &&
          t.run_at <= now) {
        auto age = std::chrono::duration_cast<Duration>(now - t.run_at);
        if (!s.oldest_due_age || age > *s.oldest_due_age) s.oldest_due_age = age;
      }
    }
    Stats out;
    for (auto& [name, s] : by_queue) out.queues.push_back(std::move(s));
    out.durability_warnings.push_back(
        "memory backend: tasks live in this process only and are lost when it exits");
    return out;
  }

  [[nodiscard]] const Clock& clock() const noexcept override { return clock_; }

 private:
  Enqueued insert(const TaskSpec& spec) {
    const TimePoint now = clock_.now();
    if (spec.unique_key) {
      auto it = unique_.find({spec.queue, *spec.unique_key});
      if (it != unique_.end()) return Enqueued{std::to_string(it->second), true};
    }
    const Id id = next_id_++;
    Task t;
    t.id = std::to_string(id);
    t.type = spec.type;
    t.queue = spec.queue;
    t.params = spec.params;
    t.status = TaskStatus::pending;
    t.max_attempts = spec.max_attempts > 0 ? spec.max_attempts : default_max_attempts;
    t.priority = spec.priority;
    t.run_at = spec.run_at.value_or(now + spec.delay);
    t.unique_key = spec.unique_key;
    t.created_at = now;
    t.updated_at = now;
    if (t.unique_key) unique_[{t.queue, *t.unique_key}] = id;
    schedule(t);
    tasks_.emplace(id, Entry{std::move(t), {}});
    return Enqueued{std::to_string(id), false};
  }

  // Files a pending or retrying task under its queue's scheduled set.
  void schedule(const Task& t) {
    queues_[t.queue].scheduled.insert(ScheduledKey{t.run_at, *parse_id(t.id), t.priority});
  }

  // Removes a pending or retrying task from the claim indexes.
  void unindex(const Task& t) {
    QueueIndex& index = queues_[t.queue];
    const Id id = *parse_id(t.id);
    index.scheduled.erase(ScheduledKey{t.run_at, id, t.priority});
    index.ready.erase(ReadyKey{t.priority, t.run_at, id});
  }

  static void promote_due(QueueIndex& index, TimePoint now) {
    while (!index.scheduled.empty() && index.scheduled.begin()->run_at <= now) {
      auto key = *index.scheduled.begin();
      index.scheduled.erase(index.scheduled.begin());
      index.ready.insert(ReadyKey{key.priority, key.run_at, key.id});
    }
  }

  void finish(Task& t, TaskStatus status, TimePoint now) {
    t.status = status;
    t.finished_at = now;
    t.updated_at = now;
    t.lease_owner.reset();
    t.lease_expires_at.reset();
    if (t.unique_key) unique_.erase({t.queue, *t.unique_key});
  }

  result<void> apply(const Lease& lease, const Settlement& s, bool rescuing) {
    if (!is_settled_status(s.status)) return errc::invalid_argument;
    Entry* e = leased(lease);
    if (e == nullptr) return errc::lease_lost;
    const TimePoint now = clock_.now();
    Task& t = e->task;
    if (rescuing && !(t.lease_expires_at && *t.lease_expires_at < now)) return errc::lease_lost;
    t.history.push_back(s.record);
    if (!s.counts_attempt && t.attempt > 0) t.attempt -= 1;
    running_.erase(*parse_id(t.id));
    e->token.clear();
    if (s.status == TaskStatus::retrying) {
      t.status = TaskStatus::retrying;
      t.run_at = s.run_at;
      t.updated_at = now;
      t.lease_owner.reset();
      t.lease_expires_at.reset();
      schedule(t);
      changed();
    } else {
      finish(t, s.status, now);
    }
    return success();
  }

  Entry* find(const TaskId& id) {
    auto n = parse_id(id);
    if (!n) return nullptr;
    auto it = tasks_.find(*n);
    return it == tasks_.end() ? nullptr : &it->second;
  }

  // The task `lease` names, if it is running under that very token.
  Entry* leased(const Lease& lease) {
    Entry* e = find(lease.id);
    if (e == nullptr || e->task.status != TaskStatus::running || lease.token.empty() ||
        e->token != lease.token) {
      return nullptr;
    }
    return e;
  }

  void changed() {
    ++version_;
    cv_.notify_all();
  }

  const Clock& clock_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t version_ = 0;
  Id next_id_ = 1;
  std::map<Id, Entry> tasks_;
  std::map<std::string, QueueIndex, std::less<>> queues_;
  std::set<Id> running_;
  std::map<std::pair<std::string, std::string>, Id> unique_;
};

}  // namespace

std::unique_ptr<Queue> make_memory_queue(ConnectOptions options) {
  return std::make_unique<MemoryQueue>(options.clock ? *options.clock : SystemClock::instance());
}

}  // namespace midas
