// SPDX-License-Identifier: MIT
#include "midas/task_context.hpp"

#include <algorithm>

namespace midas {

TaskContext::TaskContext(Queue& queue, ClaimedTask claimed, std::stop_token stop,
                         Duration lease_length)
    : queue_{queue},
      task_{std::move(claimed.task)},
      lease_{std::move(claimed.lease)},
      stop_{std::move(stop)},
      lease_length_{lease_length} {}

result<void> TaskContext::heartbeat() {
  MIDAS_TRY(lost, queue_.heartbeat(std::span<const Lease>{&lease_, 1}, lease_length_));
  if (std::find(lost.begin(), lost.end(), lease_.id) != lost.end()) return errc::lease_lost;
  lease_.expires_at = queue_.clock().now() + lease_length_;
  return success();
}

result<void> TaskContext::checkpoint(nlohmann::json progress) {
  MIDAS_TRYV(queue_.checkpoint(lease_, progress));
  task_.checkpoint = std::move(progress);
  return success();
}

result<void> TaskContext::snooze(Duration d) { return decide(Decision::snooze(d), "snoozed"); }

result<void> TaskContext::retry_after(Duration d, std::string reason) {
  return decide(Decision::retry_after(d), reason.empty() ? "retry requested" : std::move(reason));
}

result<void> TaskContext::cancel(std::string reason) {
  return decide(Decision::cancel(), std::move(reason));
}

result<void> TaskContext::fail(std::string reason) {
  return decide(Decision::fail(), std::move(reason));
}

result<void> TaskContext::decide(Decision d, std::string reason) {
  decision_ = d;
  reason_ = std::move(reason);
  return errc::handler_decision;
}

}  // namespace midas
