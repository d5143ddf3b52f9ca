// SPDX-License-Identifier: MIT
#include <chrono>
#include <iostream>
#include <midas/midas.hpp>
#include <string>

struct SendEmail {
  std::string to;
  std::string subject;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SendEmail, to, subject)

int main() {
  auto queue = midas::connect("memory://").value();  // throws std::system_error on failure

  midas::Registry registry;
  registry.add<SendEmail>(
      "send-email",
      [](const SendEmail& email, midas::TaskContext& ctx) -> midas::result<void> {
        std::cout << "attempt " << ctx.attempt() << ": mailing '" << email.subject << "' to "
                  << email.to << "\n";
        return midas::success();  // return an error or throw, and midas retries it
      },
      {.queue = "default",
       .retry = midas::RetryPolicy::exponential(2, std::chrono::seconds{1}).max_attempts(5)});

  auto id = queue->enqueue(registry.spec(SendEmail{"ada@example.com", "Welcome!"})).value().id;

  midas::Worker worker(*queue, registry, {.queues = {"default"}, .concurrency = 4});
  worker.run_until_idle();  // a service calls worker.start() and, at shutdown, worker.stop()

  auto task = queue->get(id).value();
  std::cout << "task " << task.id << " " << midas::to_string(task.status) << "\n";
  return task.status == midas::TaskStatus::succeeded ? 0 : 1;
}
