// SPDX-License-Identifier: MIT
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <vector>

#include "midas/error_classifier.hpp"
#include "midas/retry_policy.hpp"
#include "midas/task.hpp"
#include "midas/task_context.hpp"

namespace midas {

namespace detail {
/// False when `params` holds a floating-point number of magnitude 2^31 or more (or not finite):
/// nlohmann_json converts a JSON float into an integer field with a plain cast, which is
/// undefined behaviour when the value does not fit (an `int` field), so typed handlers refuse
/// those params instead (found by fuzzing). Integers written without a fraction or exponent are
/// not affected, whatever their size.
[[nodiscard]] bool numbers_fit_integers(const nlohmann::json& params);
}  // namespace detail

/// Params types: anything nlohmann_json converts both ways.
template <class T>
concept JsonParams = requires(nlohmann::json& j, const T& t) {
  j = t;
  { j.get<T>() } -> std::same_as<T>;
};

/// Called when a task is about to be recorded as failed for good: `task` as it stands after its
/// last attempt (with the checkpoint it recorded last), `last` that attempt's record (error,
/// decision "fail" or "exhausted"), and `failure` the handler's exception chain or returned error
/// (nullptr when the handler decided through `ctx.fail`, or when the worker running it died and its
/// lease expired).
using FailedHandler =
    std::function<void(const Task& task, const AttemptRecord& last, const Failure* failure)>;

/// How a registered type runs.
struct TypeOptions {
  std::string queue = "default";
  RetryPolicy retry = RetryPolicy::standard();
  ErrorClassifier classifier = ErrorClassifier::standard();
  int priority = 0;
  /// Optional: told about each task of this type that fails for good (the place for a
  /// dead-letter report), also when the failure comes from a rescue of a crashed worker's
  /// expired lease on the last attempt, where no handler runs. It runs on the worker that records
  /// the failure, before recording it: at least once per failure (again if that worker dies
  /// before the record is stored). It may run on several threads at once; what it throws is
  /// logged and ignored.
  FailedHandler on_failed{};
};

/// Per-enqueue overrides for `Registry::spec`.
struct SpecOptions {
  std::optional<std::string> queue{};
  std::optional<int> priority{};
  std::optional<TimePoint> run_at{};
  Duration delay{0};
  std::optional<std::string> unique_key{};
  std::optional<int> max_attempts{};
};

/// A handler over raw JSON params. Typed handlers are adapted to this.
using JsonHandler = std::function<result<void>(const nlohmann::json& params, TaskContext& ctx)>;

/// A registered task type.
struct TaskType {
  std::string name{};
  TypeOptions options{};
  JsonHandler handler{};
};

/// Task type name -> handler, queue, retry policy and classifier.
///
/// Fill it at start-up, then share it read-only between workers (const members are thread-safe).
/// Registering a name twice, or an invalid name, is a programming error: `std::invalid_argument`.
class Registry {
 public:
  /// Registers `T` as task type `name`. `handler(const T&, TaskContext&)` returns
  /// `midas::result<void>` or `void`, or throws. Params that do not convert to `T` fail the
  /// attempt for good (decision `fail`) with a message naming the type and the problem; so do
  /// params holding a floating-point number of magnitude 2^31 or more (see
  /// detail::numbers_fit_integers): register a JSON handler to accept those.
  template <JsonParams T, class F>
  requires std::invocable<F&, const T&, TaskContext&> Registry& add(std::string name, F handler,
                                                                    TypeOptions options = {}) {
    JsonHandler h = [handler = std::move(handler), name](const nlohmann::json& params,
                                                         TaskContext& ctx) mutable -> result<void> {
      std::optional<T> typed;
      if (!detail::numbers_fit_integers(params)) {
        return ctx.fail("params of task type '" + name +
                        "' hold a number of magnitude 2^31 or more, which midas does not decode "
                        "into a C++ type");
      }
      try {
        typed.emplace(params.get<T>());
      } catch (const nlohmann::json::exception& e) {
        return ctx.fail("params of task type '" + name + "' do not fit its C++ type: " + e.what());
      }
      using R = std::invoke_result_t<F&, const T&, TaskContext&>;
      if constexpr (std::is_void_v<R>) {
        std::invoke(handler, *typed, ctx);
        return success();
      } else {
        static_assert(std::is_convertible_v<R, result<void>>,
                      "a handler returns void or midas::result<void>");
        return std::invoke(handler, *typed, ctx);
      }
    };
    add_type(std::move(name), std::move(h), std::move(options), std::type_index{typeid(T)});
    return *this;
  }

  /// Registers a handler that takes the params as JSON.
  Registry& add_json(std::string name, JsonHandler handler, TypeOptions options = {});

  /// The type registered under `name`, or nullptr.
  [[nodiscard]] const TaskType* find(std::string_view name) const noexcept;
  /// Every queue some registered type uses, without duplicates, in registration order.
  [[nodiscard]] std::vector<std::string> queues() const;
  /// Names of all registered types, sorted.
  [[nodiscard]] std::vector<std::string> names() const;

  /// A TaskSpec for `params`: type name, queue, priority and max_attempts from the registration.
  /// `T` must be registered (else `std::invalid_argument`).
  template <JsonParams T>
  [[nodiscard]] TaskSpec spec(const T& params, const SpecOptions& options = {}) const {
    auto it = names_by_type_.find(std::type_index{typeid(T)});
    if (it == names_by_type_.end()) {
      throw std::invalid_argument("midas::Registry::spec: this C++ type was never registered");
    }
    return spec(it->second, nlohmann::json(params), options);
  }
  /// A TaskSpec for a type registered by name (`std::invalid_argument` if it is not).
  [[nodiscard]] TaskSpec spec(std::string_view name, nlohmann::json params,
                              const SpecOptions& options = {}) const;

 private:
  void add_type(std::string name, JsonHandler handler, TypeOptions options,
                std::optional<std::type_index> type);

  std::map<std::string, TaskType, std::less<>> types_;
  std::vector<std::string> order_;
  std::map<std::type_index, std::string> names_by_type_;
};

}  // namespace midas
