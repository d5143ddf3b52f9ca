// SPDX-License-Identifier: MIT
#include "midas/worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

#include "detail/random.hpp"

namespace midas {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string default_worker_id() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  std::string name = host[0] != '\0' ? std::string{host.data()} : std::string{"worker"};
  return name + ":" + std::to_string(getpid()) + ":" + detail::random_token().substr(0, 8);
}

struct Counters {
  std::atomic<std::uint64_t> claimed{0}, succeeded{0}, retried{0}, snoozed{0}, failed{0},
      cancelled{0}, rescued{0}, lease_lost{0}, backend_errors{0};

  [[nodiscard]] WorkerStats snapshot() const {
    return WorkerStats{claimed.load(), succeeded.load(),  retried.load(),
                       snoozed.load(), failed.load(),     cancelled.load(),
                       rescued.load(), lease_lost.load(), backend_errors.load()};
  }
};

WorkerStats operator-(const WorkerStats& a, const WorkerStats& b) {
  return WorkerStats{
      a.claimed - b.claimed, a.succeeded - b.succeeded,   a.retried - b.retried,
      a.snoozed - b.snoozed, a.failed - b.failed,         a.cancelled - b.cancelled,
      a.rescued - b.rescued, a.lease_lost - b.lease_lost, a.backend_errors - b.backend_errors};
}

// A claimed task on its way through an executor.
struct Job {
  ClaimedTask claimed;
  std::stop_source stop;
  TimePoint started_at{};
  // The lease deadline as renewed by heartbeats (claimed.lease keeps the one of the claim);
  // written by the fetcher, read by the executor deciding whether a failed ack may be retried.
  std::atomic<TimePoint::rep> deadline{0};
  // Filled by the executor, recorded by the completer.
  Settlement outcome{};
  int ack_attempts = 0;
  bool ack_in_doubt = false;
};

// The policy, classifier and failure hook for a task type; the defaults when it is unknown.
struct Rules {
  const RetryPolicy& policy;
  const ErrorClassifier& classifier;
  const FailedHandler* on_failed = nullptr;
};

const RetryPolicy& fallback_policy() {
  static const RetryPolicy policy = RetryPolicy::standard();
  return policy;
}

const ErrorClassifier& fallback_classifier() {
  static const ErrorClassifier classifier = ErrorClassifier::standard();
  return classifier;
}

}  // namespace

struct Worker::Impl {
  Impl(Queue& q, const Registry& r, WorkerOptions o)
      : queue{q}, registry{r}, options{std::move(o)} {
    options.concurrency = std::max(options.concurrency, 1);
    if (options.id.empty()) options.id = default_worker_id();
  }

  Queue& queue;
  const Registry& registry;
  WorkerOptions options;
  Counters counters;

  std::mutex mutex;
  // One condition per kind of waiter, so an event wakes only the threads it concerns (a single
  // one woke every executor at each claim and each finished task: a third of a busy worker's CPU
  // went to futex wake-ups and context switches).
  std::condition_variable changed;            // the fetcher and stop: slots, in-flight, stop
  std::condition_variable work_ready;         // executors: jobs queued, or exit
  std::condition_variable outcomes_ready;     // the completer: outcomes to record, or exit
  std::condition_variable wake_wanted;        // the waker: want_wake, or stop
  std::deque<std::shared_ptr<Job>> jobs;      // claimed, waiting for an executor
  std::deque<std::shared_ptr<Job>> finished;  // ran, waiting for the completer to record them
  std::map<TaskId, std::shared_ptr<Job>> in_flight;  // claimed and not yet settled
  // Claimed tasks not yet done executing (queued or running a handler); tasks whose outcome is
  // being recorded do not count, so the next claim overlaps with the previous ack.
  std::size_t unfinished = 0;
  bool stopping = false;        // no more claims
  bool executors_exit = false;  // executors leave once jobs is empty
  bool completer_exit = false;  // the completer leaves once finished is empty
  bool want_wake = false;       // the fetcher asks the waker to wait for new tasks
  bool tasks_maybe = false;     // the waker saw a wake-up
  std::vector<std::thread> executors;
  std::thread completer;
  std::thread fetcher;
  std::thread waker;
  bool running_service = false;

  // Adaptive prefetch (options.prefetch < 0): the handlers' and the claims' durations, as moving
  // averages in steady-clock nanoseconds (guarded by mutex; 0 until measured).
  double handler_ns = 0;
  double claim_ns = 0;
  std::size_t busy = 0;                // executors running a handler
  SteadyClock::time_point last_start;  // when the most recent handler started

  // How many claimed tasks may wait for or run a handler at once (mutex held).
  [[nodiscard]] std::size_t window() const noexcept {
    const auto c = static_cast<std::size_t>(options.concurrency);
    if (options.prefetch >= 0) return c + static_cast<std::size_t>(options.prefetch);
    // Every thread has been busy for longer than the handlers measured so far take: the tasks
    // running now are longer ones, so do not claim ahead for them as if they were short.
    double handler = handler_ns;
    if (busy >= c && handler_ns > 0) handler = std::max(handler, ns_since(last_start));
    return c + prefetch_for(handler);
  }

  // How many tasks the fetcher may claim now (mutex held): the window's free room, but none
  // while at least twice the window of outcomes wait for the completer. Claims never outrun the
  // acks for long: a backlog of finished tasks whose outcomes are not recorded yet would hold
  // leases for nothing and run again after a crash (a Postgres drain of short tasks built one of
  // thousands: claims are cheaper there than settles). Twice, not once: the tasks of one claim
  // finish together, and a tighter bound stalls the claims behind every ack (Redis drain -25 %).
  [[nodiscard]] std::size_t room() const noexcept {
    const std::size_t w = window();
    if (finished.size() >= 2 * w) return 0;
    return unfinished < w ? w - unfinished : 0;
  }

  // Adaptive prefetch: enough tasks claimed ahead for the handlers to keep busy through the next
  // claim's round trip (twice over), so short tasks are claimed in large batches and a backend
  // round trip is paid once for many of them, while long tasks stay at `concurrency` extra leases
  // (fair between workers). At most max_auto_prefetch_per_slot per handler thread and
  // max_auto_prefetch in all, but never fewer than `concurrency`.
  static constexpr double ewma_weight = 0.125;
  static constexpr std::size_t max_auto_prefetch_per_slot = 16;
  static constexpr std::size_t max_auto_prefetch = 256;

  static void blend(double& average, double sample) {
    average = average == 0 ? sample : average + ewma_weight * (sample - average);
  }

  static double ns_since(SteadyClock::time_point t) {
    return std::chrono::duration<double, std::nano>(SteadyClock::now() - t).count();
  }

  // The adaptive prefetch for handlers of `handler` ns each; `concurrency` until both durations
  // are measured.
  [[nodiscard]] std::size_t prefetch_for(double handler) const noexcept {
    const auto c = static_cast<std::size_t>(options.concurrency);
    if (claim_ns <= 0 || handler <= 0) return c;
    const double during_claim = 2.0 * static_cast<double>(c) * claim_ns / handler;
    const std::size_t most =
        std::max(c, std::min(max_auto_prefetch, c * max_auto_prefetch_per_slot));
    return during_claim >= static_cast<double>(most)
               ? most
               : std::max(c, static_cast<std::size_t>(during_claim));
  }

  void log(LogLevel level, const std::string& message) const {
    if (options.log) options.log(level, message);
  }

  Rules rules_for(const std::string& type) const {
    if (const TaskType* t = registry.find(type)) {
      return Rules{t->options.retry, t->options.classifier,
                   t->options.on_failed ? &t->options.on_failed : nullptr};
    }
    return Rules{fallback_policy(), fallback_classifier()};
  }

  // ---- executors -------------------------------------------------------------------------------

  void start_executors() {
    if (!executors.empty()) return;
    executors_exit = false;
    completer_exit = false;
    for (int i = 0; i < options.concurrency; ++i)
      executors.emplace_back([this] { execute_loop(); });
    completer = std::thread{[this] { complete_loop(); }};
  }

  void stop_executors() {
    {
      std::lock_guard lock{mutex};
      executors_exit = true;
    }
    work_ready.notify_all();
    for (auto& t : executors) t.join();
    executors.clear();
    {
      std::lock_guard lock{mutex};
      completer_exit = true;
    }
    outcomes_ready.notify_all();
    completer.join();
  }

  void execute_loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      SteadyClock::time_point t0;
      {
        std::unique_lock lock{mutex};
        work_ready.wait(lock, [&] { return !jobs.empty() || executors_exit; });
        if (jobs.empty()) return;
        job = std::move(jobs.front());
        jobs.pop_front();
        if (job->stop.stop_requested()) {
          // Its lease was lost while it waited (claimed ahead, a heartbeat refused): another
          // worker may run it now, so this one must not start it.
          in_flight.erase(job->claimed.lease.id);
          --unfinished;
          ++counters.lease_lost;
          lock.unlock();
          log(LogLevel::warning,
              "task " + job->claimed.task.id + ": lease lost before it started; not run here");
          changed.notify_all();
          continue;
        }
        t0 = SteadyClock::now();
        last_start = t0;
        ++busy;
      }
      run(*job);
      const double took = ns_since(t0);
      {
        std::lock_guard lock{mutex};
        finished.push_back(std::move(job));
        --unfinished;
        --busy;
        blend(handler_ns, took);
      }
      outcomes_ready.notify_one();
      changed.notify_all();
    }
  }

  // Records outcomes in batches: everything that finished while the previous ack was in flight
  // goes in the next one, so a busy worker pays one round trip for many tasks and an idle one
  // waits for nothing.
  void complete_loop() {
    constexpr std::size_t max_batch = 512;
    Duration backoff = options.backoff_min;
    for (;;) {
      std::vector<std::shared_ptr<Job>> batch;
      {
        std::unique_lock lock{mutex};
        outcomes_ready.wait(lock, [&] { return !finished.empty() || completer_exit; });
        if (finished.empty()) return;
        const bool fetcher_held = finished.size() >= 2 * window();  // see room()
        while (!finished.empty() && batch.size() < max_batch) {
          batch.push_back(std::move(finished.front()));
          finished.pop_front();
        }
        if (fetcher_held) changed.notify_all();
      }
      std::vector<std::pair<Lease, Settlement>> items;
      items.reserve(batch.size());
      for (const auto& job : batch) items.emplace_back(job->claimed.lease, job->outcome);
      auto acked = queue.settle_batch(items);
      std::vector<std::shared_ptr<Job>> again;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        std::error_code ec = make_error_code(errc::protocol_error);
        if (!acked) {
          ec = acked.error();
        } else if (i < acked.value().size()) {
          ec = acked.value()[i];
        }
        if (!record_ack(*batch[i], ec)) again.push_back(batch[i]);
      }
      {
        std::lock_guard lock{mutex};
        for (const auto& job : batch) {
          if (std::find(again.begin(), again.end(), job) == again.end()) {
            in_flight.erase(job->claimed.lease.id);
          }
        }
        for (auto it = again.rbegin(); it != again.rend(); ++it) finished.push_front(*it);
      }
      changed.notify_all();
      if (again.empty()) {
        backoff = options.backoff_min;
      } else {
        // Not interruptible by stop(): a finished attempt is worth recording during shutdown.
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, options.backoff_max);
      }
    }
  }

  // Handles one job's ack result; false when the ack should be tried again.
  //
  // An ack whose reply was lost (errc::in_doubt) is retried too: that is safe only because every
  // transition is fenced by the lease token. If the first ack landed, the token is gone and the
  // retry is refused with lease_lost, which then means "recorded", not "taken over".
  bool record_ack(Job& job, std::error_code ec) {
    const Lease& lease = job.claimed.lease;
    if (!ec) {
      count(job.outcome);
      return true;
    }
    if (ec == errc::lease_lost) {
      if (job.ack_in_doubt) {
        log(LogLevel::info,
            "task " + lease.id + ": the outcome whose reply was lost had been recorded");
        count(job.outcome);
      } else {
        ++counters.lease_lost;
        log(LogLevel::warning, "task " + lease.id +
                                   ": outcome rejected, the lease was lost (another worker took "
                                   "the task after this lease expired)");
      }
      return true;
    }
    ++counters.backend_errors;
    job.ack_in_doubt = job.ack_in_doubt || ec == errc::in_doubt;
    const bool retryable = is_transient(ec) || ec == errc::in_doubt;
    const bool lease_may_hold =
        queue.clock().now() < TimePoint{TimePoint::duration{job.deadline.load()}};
    if (!retryable || !lease_may_hold || ++job.ack_attempts >= 10) {
      log(LogLevel::error, "task " + lease.id + ": could not record the outcome (" + ec.message() +
                               "); the task runs again once its lease expires");
      return true;
    }
    return false;
  }

  void run(Job& job) {
    job.started_at = queue.clock().now();  // not the claim: a claimed-ahead task waits first
    const Task& task = job.claimed.task;
    TaskContext ctx{queue, job.claimed, job.stop.get_token(), options.lease};
    std::optional<Failure> failure;
    const TaskType* type = registry.find(task.type);
    if (type == nullptr) {
      failure.emplace(
          make_error_code(errc::unknown_task_type),
          "no handler is registered for task type '" + task.type + "' in worker " + options.id);
    } else {
      try {
        result<void> r = type->handler(task.params, ctx);
        if (!r && !(r.error() == errc::handler_decision && ctx.decision())) {
          failure.emplace(r.error());
        }
      } catch (...) {
        failure.emplace(std::current_exception());
      }
    }
    const TimePoint now = queue.clock().now();
    AttemptRecord record;
    record.attempt = task.attempt;
    record.started_at = job.started_at;
    record.finished_at = now;
    record.worker_id = options.id;

    Settlement s;
    std::optional<Decision> decision;
    if (failure) {
      record.error = failure->info();
      decision = rules_for(task.type).classifier.classify(*failure);
    } else if (ctx.decision()) {
      decision = *ctx.decision();
      record.error = ErrorInfo{"decision", ctx.decision_reason(),
                               "midas:" + std::to_string(static_cast<int>(errc::handler_decision)),
                               std::nullopt};
    }
    if (!decision) {
      s.status = TaskStatus::succeeded;
      record.decision = "succeeded";
    } else {
      apply_decision(*decision, task, rules_for(task.type).policy, now, record, s);
    }
    if (s.status == TaskStatus::failed) {
      tell_failed(ctx.task(), record, failure ? &*failure : nullptr);  // with its last checkpoint
    }
    s.record = std::move(record);
    job.outcome = std::move(s);
  }

  // Runs the type's on_failed hook, if any, before the failure is recorded.
  void tell_failed(const Task& task, const AttemptRecord& record, const Failure* failure) {
    const FailedHandler* hook = rules_for(task.type).on_failed;
    if (hook == nullptr) return;
    try {
      (*hook)(task, record, failure);
    } catch (const std::exception& e) {
      log(LogLevel::warning, "task " + task.id + ": on_failed threw: " + e.what());
    } catch (...) {
      log(LogLevel::warning, "task " + task.id + ": on_failed threw a non-standard exception");
    }
  }

  // Fills `s` from a decision: status, next run, whether the attempt counts.
  static void apply_decision(const Decision& d, const Task& task, const RetryPolicy& policy,
                             TimePoint now, AttemptRecord& record, Settlement& s) {
    record.decision = std::string{to_string(d.kind())};
    const bool attempts_left = task.attempt < task.max_attempts;
    switch (d.kind()) {
      case Decision::Kind::retry:
      case Decision::Kind::retry_after:
        if (!attempts_left) {
          s.status = TaskStatus::failed;
          record.decision = "exhausted";
          return;
        }
        s.status = TaskStatus::retrying;
        s.run_at =
            now + (d.kind() == Decision::Kind::retry ? policy.delay(task.attempt) : d.delay());
        record.next_run_at = s.run_at;
        return;
      case Decision::Kind::snooze:
        s.status = TaskStatus::retrying;
        s.counts_attempt = false;
        s.run_at = now + d.delay();
        record.next_run_at = s.run_at;
        return;
      case Decision::Kind::fail:
        s.status = TaskStatus::failed;
        return;
      case Decision::Kind::cancel:
        s.status = TaskStatus::cancelled;
        return;
    }
  }

  // Records a rescuer's decision, retrying transient errors a few times. Fenced, so a retry
  // after a lost reply is safe (see record_ack). True when the decision was recorded.
  bool rescue(const Lease& lease, const Settlement& s) {
    Duration backoff = options.backoff_min;
    bool in_doubt = false;
    for (int attempt = 1;; ++attempt) {
      auto r = queue.rescue(lease, s);
      if (r || (in_doubt && r.error() == errc::lease_lost)) {
        count(s);
        return true;
      }
      if (r.error() == errc::lease_lost) return false;  // another rescuer, or a late heartbeat
      ++counters.backend_errors;
      in_doubt = in_doubt || r.error() == errc::in_doubt;
      if ((!is_transient(r.error()) && r.error() != errc::in_doubt) || attempt >= 5 ||
          stop_waiting(backoff)) {
        return false;  // the next rescue pass tries again
      }
      backoff = std::min(backoff * 2, options.backoff_max);
    }
  }

  // Sleeps `d` unless the worker is stopping; true if it is.
  bool stop_waiting(Duration d) {
    std::unique_lock lock{mutex};
    return changed.wait_for(lock, d, [&] { return stopping; });
  }

  void count(const Settlement& s) {
    switch (s.status) {
      case TaskStatus::succeeded:
        ++counters.succeeded;
        break;
      case TaskStatus::retrying:
        ++(s.counts_attempt ? counters.retried : counters.snoozed);
        break;
      case TaskStatus::failed:
        ++counters.failed;
        break;
      case TaskStatus::cancelled:
        ++counters.cancelled;
        break;
      case TaskStatus::pending:
      case TaskStatus::running:
        break;
    }
  }

  // ---- fetcher ---------------------------------------------------------------------------------

  // Claims and dispatches until stopped or, with `until_idle`, until nothing is due or running.
  void fetch_loop(bool until_idle) {
    Duration backoff{0};
    auto next_heartbeat = SteadyClock::now() + options.heartbeat_interval;
    auto next_rescue = SteadyClock::now();
    for (;;) {
      {
        std::lock_guard lock{mutex};
        if (stopping) return;
      }
      const auto now = SteadyClock::now();
      if (now >= next_heartbeat) {
        heartbeat_all();
        next_heartbeat = now + options.heartbeat_interval;
      }
      if (now >= next_rescue) {
        rescue_expired();
        next_rescue = now + options.rescue_interval;
      }
      std::size_t free_slots = 0;
      {
        std::lock_guard lock{mutex};
        free_slots = room();
      }
      if (free_slots > 0) {
        ClaimRequest request{options.queues, free_slots, options.id, options.lease};
        const auto t0 = SteadyClock::now();
        auto claimed = queue.claim(request);
        if (claimed && !claimed.value().empty()) {
          const double took = ns_since(t0);
          std::lock_guard lock{mutex};
          blend(claim_ns, took);
        }
        if (!claimed) {
          ++counters.backend_errors;
          backoff = backoff.count() == 0 ? options.backoff_min
                                         : std::min(backoff * 2, options.backoff_max);
          log(LogLevel::warning, "claim failed: " + claimed.error().message() + "; retrying in " +
                                     std::to_string(backoff.count()) + " ms");
          if (stop_waiting(backoff)) return;
          continue;
        }
        if (backoff.count() != 0) log(LogLevel::info, "backend reachable again");
        backoff = Duration{0};
        if (!claimed.value().empty()) {
          dispatch(std::move(claimed).value());
          continue;
        }
      }
      std::unique_lock lock{mutex};
      if (until_idle) {
        if (in_flight.empty()) {
          // The window was full when this pass skipped its claim, and all of it has ended since:
          // claim before deciding that nothing is left.
          if (free_slots == 0) continue;
          lock.unlock();
          if (rescue_expired() > 0) continue;  // expired leases became due work
          return;                              // nothing due, nothing running
        }
        // Wait for a running task to end: it may have scheduled a retry that is due now.
        const auto n = in_flight.size();
        const auto u = unfinished;
        changed.wait_until(lock, next_heartbeat,
                           [&] { return in_flight.size() != n || unfinished != u || stopping; });
        continue;
      }
      if (free_slots == 0) {
        changed.wait_until(lock, std::min(next_heartbeat, next_rescue),
                           [&] { return room() > 0 || stopping; });
        continue;
      }
      // Idle slots and nothing due: let the waker block on the backend's wake-up.
      if (!want_wake && !tasks_maybe) want_wake = true;
      wake_wanted.notify_one();
      changed.wait_until(lock, std::min(next_heartbeat, next_rescue),
                         [&] { return tasks_maybe || stopping; });
      tasks_maybe = false;
    }
  }

  void dispatch(std::vector<ClaimedTask> claimed) {
    const TimePoint now = queue.clock().now();
    {
      std::lock_guard lock{mutex};
      for (auto& c : claimed) {
        auto job = std::make_shared<Job>();
        job->claimed = std::move(c);
        job->started_at = now;
        job->deadline = job->claimed.lease.expires_at.time_since_epoch().count();
        in_flight[job->claimed.lease.id] = job;
        ++unfinished;
        jobs.push_back(std::move(job));
        ++counters.claimed;
      }
    }
    if (claimed.size() == 1) {
      work_ready.notify_one();
    } else {
      work_ready.notify_all();
    }
  }

  void heartbeat_all() {
    std::vector<Lease> leases;
    {
      std::lock_guard lock{mutex};
      for (const auto& [id, job] : in_flight) leases.push_back(job->claimed.lease);
    }
    if (leases.empty()) return;
    auto lost = queue.heartbeat(leases, options.lease);
    if (!lost) {
      ++counters.backend_errors;
      log(LogLevel::warning, "heartbeat failed: " + lost.error().message());
      return;
    }
    const TimePoint deadline = queue.clock().now() + options.lease;
    std::lock_guard lock{mutex};
    for (auto& [id, job] : in_flight) {
      if (std::find(lost.value().begin(), lost.value().end(), id) != lost.value().end()) {
        job->stop.request_stop();  // another worker owns it now: tell the handler to stop
      } else {
        job->deadline = deadline.time_since_epoch().count();
      }
    }
  }

  // Takes back tasks whose worker stopped heartbeating; each counts as a failed attempt.
  // Returns how many were taken back.
  std::size_t rescue_expired() {
    std::size_t rescued = 0;
    auto expired = queue.expired(options.queues, 100);
    if (!expired) {
      ++counters.backend_errors;
      return 0;
    }
    for (auto& c : expired.value()) {
      {
        std::lock_guard lock{mutex};
        if (in_flight.contains(c.lease.id)) continue;  // ours: heartbeats will renew it
      }
      const Task& task = c.task;
      const TimePoint now = queue.clock().now();
      Failure failure{make_error_code(errc::lease_lost),
                      "lease expired: worker " + c.lease.worker_id + " stopped renewing attempt " +
                          std::to_string(task.attempt)};
      AttemptRecord record;
      record.attempt = task.attempt;
      record.started_at = task.updated_at;
      record.finished_at = now;
      record.worker_id = c.lease.worker_id;
      record.error = failure.info();
      record.error->type = "lease_expired";
      Settlement s;
      // The retry policy alone decides: a crashed worker says nothing about the task, so a
      // classifier that fails unknown errors must not fail it.
      apply_decision(Decision::retry(), task, rules_for(task.type).policy, now, record, s);
      if (s.status == TaskStatus::retrying && s.run_at <= now && task.run_at < s.run_at) {
        // No wait asked: the task goes back to its place in line rather than behind every task
        // that became due while its worker was dead, so a crash costs it the lease, not the queue.
        s.run_at = task.run_at;
        record.next_run_at = s.run_at;
      }
      if (s.status == TaskStatus::failed) tell_failed(task, record, nullptr);
      s.record = std::move(record);
      if (rescue(c.lease, s)) {
        ++counters.rescued;
        ++rescued;
        log(LogLevel::warning,
            "task " + task.id + ": rescued after its lease expired (" + s.record.decision + ")");
      }
    }
    return rescued;
  }

  // ---- waker -----------------------------------------------------------------------------------

  // Blocks on the backend's wake-up when the fetcher asks, in short slices so stop() is prompt.
  void wake_loop() {
    constexpr Duration slice{200};
    for (;;) {
      {
        std::unique_lock lock{mutex};
        wake_wanted.wait(lock, [&] { return want_wake || stopping; });
        if (stopping) return;
      }
      const auto deadline = SteadyClock::now() + options.poll_interval;
      bool woken = false;
      while (!woken && SteadyClock::now() < deadline) {
        {
          std::lock_guard lock{mutex};
          if (stopping) return;
        }
        auto left = std::chrono::duration_cast<Duration>(deadline - SteadyClock::now());
        auto r = queue.wait_for_tasks(options.queues, std::clamp(left, Duration{1}, slice));
        if (!r) {
          if (stop_waiting(options.backoff_min)) return;
          break;  // let the fetcher's claim report the error and back off
        }
        woken = r.value();
      }
      {
        std::lock_guard lock{mutex};
        want_wake = false;
        tasks_maybe = true;  // woken, or the poll interval passed: claim again
      }
      changed.notify_all();
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  // Tasks claimed ahead that no handler started are given back when the worker stops, instead of
  // being started during the shutdown: a snooze (the attempt does not count) that keeps their
  // place in line (their run_at). The completer records it like any outcome.
  void give_back_queued() {
    std::deque<std::shared_ptr<Job>> queued;
    {
      std::lock_guard lock{mutex};
      queued.swap(jobs);
      unfinished -= queued.size();
    }
    if (queued.empty()) return;
    const TimePoint now = queue.clock().now();
    for (auto& job : queued) {
      const Task& task = job->claimed.task;
      Settlement s;
      s.status = TaskStatus::retrying;
      s.counts_attempt = false;
      s.run_at = task.run_at;
      s.record.attempt = task.attempt;
      s.record.started_at = now;
      s.record.finished_at = now;
      s.record.worker_id = options.id;
      s.record.decision = std::string{to_string(Decision::Kind::snooze)};
      s.record.next_run_at = s.run_at;
      s.record.error = ErrorInfo{"shutdown", "the worker stopped before this task started",
                                 "midas:shutdown", std::nullopt};
      job->outcome = std::move(s);
    }
    {
      std::lock_guard lock{mutex};
      for (auto& job : queued) finished.push_back(std::move(job));
    }
    outcomes_ready.notify_one();
    log(LogLevel::info, std::to_string(queued.size()) +
                            " task(s) claimed ahead and not started given back at shutdown");
  }

  // Waits for the running tasks to end, heartbeating their leases meanwhile (the fetcher, which
  // heartbeats otherwise, has stopped); past the grace period asks them to stop, and waits on.
  void drain_and_stop_executors() {
    give_back_queued();
    const auto grace_end = SteadyClock::now() + options.shutdown_grace;
    auto next_heartbeat = SteadyClock::now() + options.heartbeat_interval;
    bool asked_to_stop = false;
    std::unique_lock lock{mutex};
    while (!in_flight.empty()) {
      const auto now = SteadyClock::now();
      if (!asked_to_stop && now >= grace_end) {
        log(LogLevel::warning, std::to_string(in_flight.size()) +
                                   " task(s) still running after the shutdown grace period; "
                                   "asking them to stop");
        for (auto& [id, job] : in_flight) job->stop.request_stop();
        asked_to_stop = true;
        continue;
      }
      if (now >= next_heartbeat) {
        lock.unlock();
        heartbeat_all();
        lock.lock();
        next_heartbeat = SteadyClock::now() + options.heartbeat_interval;
        continue;
      }
      const auto until = asked_to_stop ? next_heartbeat : std::min(next_heartbeat, grace_end);
      changed.wait_until(lock, until, [&] { return in_flight.empty(); });
    }
    lock.unlock();
    stop_executors();
  }
};

Worker::Worker(Queue& queue, const Registry& registry, WorkerOptions options)
    : impl_{std::make_unique<Impl>(queue, registry, std::move(options))} {}

Worker::~Worker() { stop(); }

void Worker::start() {
  Impl& w = *impl_;
  if (w.running_service) return;
  {
    std::lock_guard lock{w.mutex};
    w.stopping = false;
    w.want_wake = false;
    w.tasks_maybe = false;
  }
  w.running_service = true;
  w.start_executors();
  w.waker = std::thread{[&w] { w.wake_loop(); }};
  w.fetcher = std::thread{[&w] { w.fetch_loop(false); }};
}

void Worker::stop() {
  Impl& w = *impl_;
  if (!w.running_service) return;
  {
    std::lock_guard lock{w.mutex};
    w.stopping = true;
  }
  w.changed.notify_all();
  w.wake_wanted.notify_all();
  w.fetcher.join();
  w.waker.join();
  w.drain_and_stop_executors();
  w.running_service = false;
}

WorkerStats Worker::run_until_idle() {
  Impl& w = *impl_;
  if (w.running_service) {
    throw std::logic_error(
        "midas::Worker::run_until_idle: the worker was started; call stop() first");
  }
  const WorkerStats before = w.counters.snapshot();
  {
    std::lock_guard lock{w.mutex};
    w.stopping = false;
  }
  w.start_executors();
  w.fetch_loop(true);
  w.drain_and_stop_executors();
  return w.counters.snapshot() - before;
}

WorkerStats Worker::stats() const { return impl_->counters.snapshot(); }

const std::string& Worker::id() const noexcept { return impl_->options.id; }

}  // namespace midas
