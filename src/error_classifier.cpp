// SPDX-License-Identifier: MIT
#include "midas/error_classifier.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <typeinfo>

namespace midas {
namespace {

constexpr int max_chain_depth = 64;  // a nested chain deeper than this is cut, not followed forever

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return "unknown";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name{
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free};
  return status == 0 && name ? std::string{name.get()} : std::string{mangled};
}

std::string current_exception_type_name() {
  const std::type_info* t = abi::__cxa_current_exception_type();
  return t ? demangle(t->name()) : "unknown";
}

}  // namespace

std::string_view to_string(Decision::Kind k) noexcept {
  switch (k) {
    case Decision::Kind::retry:
      return "retry";
    case Decision::Kind::retry_after:
      return "retry_after";
    case Decision::Kind::snooze:
      return "snooze";
    case Decision::Kind::fail:
      return "fail";
    case Decision::Kind::cancel:
      return "cancel";
  }
  return "unknown";
}

Failure::Failure(std::exception_ptr e) {
  std::exception_ptr p = std::move(e);
  for (int depth = 0; p && depth < max_chain_depth; ++depth) {
    chain_.push_back(p);
    if (depth > 0) chain_messages_.push_back(message_);  // the level above, now a wrapper
    std::exception_ptr next;
    try {
      std::rethrow_exception(p);
    } catch (const std::exception& ex) {
      type_name_ = demangle(typeid(ex).name());
      message_ = ex.what();
      if (const auto* se = dynamic_cast<const std::system_error*>(&ex))
        codes_.push_back(se->code());
      if (const auto* he = dynamic_cast<const HttpError*>(&ex)) {
        http_status_ = he->status();  // nearer the root overwrites: the root cause wins
        retry_after_ = he->retry_after();
      }
      if (const auto* n = dynamic_cast<const std::nested_exception*>(&ex)) next = n->nested_ptr();
    } catch (const std::nested_exception& n) {
      type_name_ = current_exception_type_name();
      message_.clear();
      next = n.nested_ptr();
    } catch (...) {
      type_name_ = current_exception_type_name();
      message_ = "exception of type " + type_name_ + " (not derived from std::exception)";
    }
    p = next;
  }
  if (!http_status_) {
    for (auto it = codes_.rbegin(); it != codes_.rend(); ++it) {
      if (it->category() == http_category()) {
        http_status_ = it->value();
        break;
      }
    }
  }
}

Failure::Failure(std::error_code ec, std::string message) {
  codes_.push_back(ec);
  type_name_ = ec.category().name();
  message_ = message.empty() ? ec.message() : std::move(message);
  if (ec.category() == http_category()) http_status_ = ec.value();
}

bool Failure::has(const std::error_condition& cond) const noexcept {
  return std::any_of(codes_.begin(), codes_.end(), [&](const auto& ec) { return ec == cond; });
}

bool Failure::has(const std::error_code& code) const noexcept {
  return std::any_of(codes_.begin(), codes_.end(), [&](const auto& ec) { return ec == code; });
}

ErrorInfo Failure::info() const {
  ErrorInfo info;
  info.type = type_name_;
  info.message = message_;
  if (!codes_.empty()) {
    const auto& root = codes_.back();
    info.code = std::string{root.category().name()} + ":" + std::to_string(root.value());
  }
  info.http_status = http_status_;
  info.context = chain_messages_;
  return info;
}

ErrorClassifier& ErrorClassifier::on(std::error_code ec, Decision d) {
  return when([ec](const Failure& f) { return f.has(ec); }, d);
}

ErrorClassifier& ErrorClassifier::on(std::error_condition cond, Decision d) {
  return when([cond](const Failure& f) { return f.has(cond); }, d);
}

ErrorClassifier& ErrorClassifier::retry_on_status(std::initializer_list<int> statuses) {
  std::vector<int> list{statuses};
  rules_.emplace_back([list](const Failure& f) -> std::optional<Decision> {
    auto status = f.http_status();
    if (!status || std::find(list.begin(), list.end(), *status) == list.end()) return std::nullopt;
    if (auto after = f.retry_after()) return Decision::retry_after(*after);
    return Decision::retry();
  });
  return *this;
}

ErrorClassifier& ErrorClassifier::fail_on_status(std::initializer_list<int> statuses) {
  std::vector<int> list{statuses};
  return when(
      [list](const Failure& f) {
        auto status = f.http_status();
        return status && std::find(list.begin(), list.end(), *status) != list.end();
      },
      Decision::fail());
}

ErrorClassifier& ErrorClassifier::when(Predicate p, Decision d) {
  rules_.emplace_back([p = std::move(p), d](const Failure& f) -> std::optional<Decision> {
    if (p(f)) return d;
    return std::nullopt;
  });
  return *this;
}

ErrorClassifier& ErrorClassifier::when(std::function<std::optional<Decision>(const Failure&)> f) {
  rules_.push_back(std::move(f));
  return *this;
}

ErrorClassifier& ErrorClassifier::otherwise(Decision d) noexcept {
  default_ = d;
  return *this;
}

Decision ErrorClassifier::classify(const Failure& f) const {
  for (const auto& rule : rules_) {
    if (auto d = rule(f)) return *d;
  }
  return default_;
}

}  // namespace midas
