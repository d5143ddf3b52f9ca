// SPDX-License-Identifier: MIT
// What midas reads back from a backend or a caller as JSON: tasks (with their history), specs,
// attempt records (the direct history reader must read what the JSON library reads), times and
// status names; and task params decoded into a registered C++ type, which must fail the attempt
// with a message, never crash or throw out of the handler.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <midas/midas.hpp>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "detail/record_json.hpp"

namespace midas_fuzz {  // named: the JSON conversions of an unnamed one would be unused

struct Greeting {
  std::string name;
  int times = 0;
  std::vector<std::string> tags;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Greeting, name, times, tags)

}  // namespace midas_fuzz

namespace {

using midas_fuzz::Greeting;

template <class T>
void try_decode(const nlohmann::json& j) {
  try {
    (void)j.get<T>();
  } catch (const nlohmann::json::exception&) {
  }
}

struct Fixture {
  std::unique_ptr<midas::Queue> queue = std::move(midas::connect("memory://").value());
  midas::Registry registry;
  Fixture() {
    registry.add<Greeting>("greet", [](const Greeting& g, midas::TaskContext&) {
      if (g.times < 0) throw std::invalid_argument("negative");
    });
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture f;
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  (void)midas::parse_time(text);
  (void)midas::parse_task_status(text);
  (void)midas::is_valid_name(text);

  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);

  // A stored history: what the direct reader reads, the JSON library must read the same.
  std::vector<midas::AttemptRecord> direct;
  if (midas::detail::read_plain_history(text, direct)) {
    if (j.is_discarded()) __builtin_trap();
    try {
      if (j.get<std::vector<midas::AttemptRecord>>() != direct) __builtin_trap();
    } catch (const nlohmann::json::exception&) {
      __builtin_trap();
    }
  }
  if (j.is_discarded()) return 0;
  try_decode<midas::Task>(j);
  try_decode<midas::AttemptRecord>(j);
  try_decode<midas::ErrorInfo>(j);
  try {
    const auto spec = j.get<midas::TaskSpec>();
    (void)midas::validate(spec);
  } catch (const nlohmann::json::exception&) {
  }

  // Params into a registered type, as a worker runs them.
  const midas::TaskType* type = f.registry.find("greet");
  midas::ClaimedTask claimed;
  claimed.task.type = "greet";
  claimed.task.params = j;
  midas::TaskContext ctx{*f.queue, claimed, std::stop_token{}, std::chrono::seconds{8}};
  try {
    auto r = type->handler(j, ctx);
    // A refusal of the params is a fail decision with a reason naming the type.
    if (!r && ctx.decision() && ctx.decision_reason().find("greet") == std::string::npos) {
      __builtin_trap();
    }
  } catch (const std::invalid_argument&) {  // the handler's own exception: the classifier's job
  }
  return 0;
}
