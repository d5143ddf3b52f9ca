// SPDX-License-Identifier: MIT
#include "midas/registry.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace midas {

bool detail::numbers_fit_integers(const nlohmann::json& params) {
  // An explicit stack: params may nest as deep as the parser allowed.
  std::vector<const nlohmann::json*> todo{&params};
  while (!todo.empty()) {
    const nlohmann::json* j = todo.back();
    todo.pop_back();
    if (j->is_number_float()) {
      const double v = j->get<double>();
      if (!std::isfinite(v) || v >= 2147483648.0 || v < -2147483648.0) {
        return false;
      }
    } else if (j->is_structured()) {
      for (const auto& child : *j) todo.push_back(&child);
    }
  }
  return true;
}

Registry& Registry::add_json(std::string name, JsonHandler handler, TypeOptions options) {
  add_type(std::move(name), std::move(handler), std::move(options), std::nullopt);
  return *this;
}

void Registry::add_type(std::string name, JsonHandler handler, TypeOptions options,
                        std::optional<std::type_index> type) {
  if (!is_valid_name(name)) {
    throw std::invalid_argument("midas::Registry: invalid task type name '" + name +
                                "' (1-128 characters of A-Z a-z 0-9 _ - . :)");
  }
  if (!is_valid_name(options.queue)) {
    throw std::invalid_argument("midas::Registry: task type '" + name +
                                "' has invalid queue name '" + options.queue + "'");
  }
  if (!handler)
    throw std::invalid_argument("midas::Registry: task type '" + name + "' has no handler");
  if (types_.contains(name)) {
    throw std::invalid_argument("midas::Registry: task type '" + name + "' is registered twice");
  }
  if (type) {
    auto [it, inserted] = names_by_type_.emplace(*type, name);
    if (!inserted) {
      throw std::invalid_argument("midas::Registry: the C++ type of task type '" + name +
                                  "' is already registered as '" + it->second + "'");
    }
  }
  order_.push_back(name);
  types_.emplace(name, TaskType{name, std::move(options), std::move(handler)});
}

const TaskType* Registry::find(std::string_view name) const noexcept {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::queues() const {
  std::vector<std::string> out;
  for (const auto& name : order_) {
    const auto& queue = types_.find(name)->second.options.queue;
    if (std::find(out.begin(), out.end(), queue) == out.end()) out.push_back(queue);
  }
  return out;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  out.reserve(types_.size());
  for (const auto& [name, type] : types_) out.push_back(name);
  return out;
}

TaskSpec Registry::spec(std::string_view name, nlohmann::json params,
                        const SpecOptions& options) const {
  const TaskType* type = find(name);
  if (type == nullptr) {
    throw std::invalid_argument("midas::Registry::spec: task type '" + std::string{name} +
                                "' is not registered");
  }
  TaskSpec spec;
  spec.type = type->name;
  spec.params = std::move(params);
  spec.queue = options.queue.value_or(type->options.queue);
  spec.priority = options.priority.value_or(type->options.priority);
  spec.run_at = options.run_at;
  spec.delay = options.delay;
  spec.unique_key = options.unique_key;
  spec.max_attempts = options.max_attempts.value_or(type->options.retry.max_attempts());
  return spec;
}

}  // namespace midas
