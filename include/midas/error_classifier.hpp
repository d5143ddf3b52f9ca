// SPDX-License-Identifier: MIT
#pragma once

#include <exception>
#include <functional>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "midas/clock.hpp"
#include "midas/task.hpp"

namespace midas {

/// What to do with a failed attempt.
class Decision {
 public:
  enum class Kind {
    retry,        ///< Try again after the policy's delay, if attempts are left.
    retry_after,  ///< Try again after a delay the server asked for (429/503 Retry-After).
    snooze,       ///< Try again after a delay; this attempt does not count.
    fail,         ///< Permanent failure: no more attempts.
    cancel,       ///< Stop: the task is cancelled, not failed.
  };
  [[nodiscard]] static Decision retry() noexcept { return Decision{Kind::retry, Duration{0}}; }
  [[nodiscard]] static Decision retry_after(Duration d) noexcept {
    return Decision{Kind::retry_after, d};
  }
  [[nodiscard]] static Decision snooze(Duration d) noexcept { return Decision{Kind::snooze, d}; }
  [[nodiscard]] static Decision fail() noexcept { return Decision{Kind::fail, Duration{0}}; }
  [[nodiscard]] static Decision cancel() noexcept { return Decision{Kind::cancel, Duration{0}}; }

  [[nodiscard]] Kind kind() const noexcept { return kind_; }
  /// The delay of retry_after and snooze.
  [[nodiscard]] Duration delay() const noexcept { return delay_; }
  friend bool operator==(const Decision&, const Decision&) = default;

 private:
  Decision(Kind k, Duration d) noexcept : kind_{k}, delay_{d} {}
  Kind kind_;
  Duration delay_;
};

/// "retry", "retry_after", "snooze", "fail", "cancel".
[[nodiscard]] std::string_view to_string(Decision::Kind k) noexcept;

/// An HTTP failure a handler can throw (or nest) so the classifier sees the status and Retry-After.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string message, std::optional<Duration> retry_after = std::nullopt)
      : std::runtime_error(std::move(message)), status_{status}, retry_after_{retry_after} {}
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] std::optional<Duration> retry_after() const noexcept { return retry_after_; }

 private:
  int status_;
  std::optional<Duration> retry_after_;
};

/// A failed attempt as the classifier sees it: the exception (with its whole nested chain) or the
/// error code a handler returned, plus what was found in it.
class Failure {
 public:
  /// From a thrown exception; walks its `std::nested_exception` chain.
  explicit Failure(std::exception_ptr e);
  /// From an error a handler returned.
  explicit Failure(std::error_code ec, std::string message = {});

  /// Outermost first, root cause last. Empty for a returned error code.
  [[nodiscard]] const std::vector<std::exception_ptr>& chain() const noexcept { return chain_; }
  /// Every error code found: the returned one, and those of std::system_error in the chain.
  [[nodiscard]] const std::vector<std::error_code>& codes() const noexcept { return codes_; }
  /// The HTTP status nearest the root cause (HttpError, or a code of http_category()).
  [[nodiscard]] std::optional<int> http_status() const noexcept { return http_status_; }
  /// Retry-After, when the HttpError that gave the status carried one.
  [[nodiscard]] std::optional<Duration> retry_after() const noexcept { return retry_after_; }
  /// The root cause's message.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  /// The root cause's type (demangled), or the error category's name.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

  /// The first exception in the chain, outermost first, that is an `E` (or derives from it).
  template <class E>
  [[nodiscard]] const E* find() const noexcept {
    for (const auto& p : chain_) {
      try {
        std::rethrow_exception(p);
      } catch (const E& e) {
        return &e;  // the object lives as long as the exception_ptr in chain_
      } catch (...) {
      }
    }
    return nullptr;
  }
  /// True when some error code in the failure is equivalent to `cond`.
  [[nodiscard]] bool has(const std::error_condition& cond) const noexcept;
  /// True when some error code in the failure equals `ec`.
  [[nodiscard]] bool has(const std::error_code& ec) const noexcept;

  /// What the history records.
  [[nodiscard]] ErrorInfo info() const;

 private:
  std::vector<std::exception_ptr> chain_;
  std::vector<std::error_code> codes_;
  std::optional<int> http_status_;
  std::optional<Duration> retry_after_;
  std::string message_;
  std::string type_name_;
  std::vector<std::string> chain_messages_;  // messages above the root, outermost first
};

/// Turns a failure into a Decision by rules matched in order; the first match wins.
///
/// Matching is by root cause: a rule for an exception type matches at any depth of a
/// `std::throw_with_nested` chain, and subclasses match (`dynamic_cast` semantics).
class ErrorClassifier {
 public:
  using Predicate = std::function<bool(const Failure&)>;

  /// Retries on `E` anywhere in the chain.
  template <class E>
  ErrorClassifier& retry_on() {
    return on<E>(Decision::retry());
  }
  /// Fails for good on `E` anywhere in the chain.
  template <class E>
  ErrorClassifier& fail_on() {
    return on<E>(Decision::fail());
  }
  /// Decides `d` on `E` anywhere in the chain.
  template <class E>
  ErrorClassifier& on(Decision d) {
    return when([](const Failure& f) { return f.find<E>() != nullptr; }, d);
  }

  /// Retries when an error code in the failure matches (`std::errc::timed_out`,
  /// `midas::errc::...`).
  template <class Code>
  requires std::is_error_code_enum_v<Code> || std::is_error_condition_enum_v<Code> ErrorClassifier&
  retry_on(Code c) {
    return on(c, Decision::retry());
  }
  template <class Code>
  requires std::is_error_code_enum_v<Code> || std::is_error_condition_enum_v<Code> ErrorClassifier&
  fail_on(Code c) {
    return on(c, Decision::fail());
  }
  template <class Code>
  requires std::is_error_code_enum_v<Code> || std::is_error_condition_enum_v<Code> ErrorClassifier&
  on(Code c, Decision d) {
    if constexpr (std::is_error_code_enum_v<Code>) {
      return on(std::error_code{make_error_code(c)}, d);
    } else {
      return on(std::error_condition{make_error_condition(c)}, d);
    }
  }
  ErrorClassifier& on(std::error_code ec, Decision d);
  ErrorClassifier& on(std::error_condition cond, Decision d);

  /// Retries on these HTTP statuses; with a Retry-After the decision is retry_after(that delay).
  ErrorClassifier& retry_on_status(std::initializer_list<int> statuses);
  /// Fails for good on these HTTP statuses.
  ErrorClassifier& fail_on_status(std::initializer_list<int> statuses);

  /// Decides `d` when `p` holds.
  ErrorClassifier& when(Predicate p, Decision d);
  /// Decides whatever `f` returns, when it returns a decision.
  ErrorClassifier& when(std::function<std::optional<Decision>(const Failure&)> f);
  /// The decision when no rule matches (default: retry).
  ErrorClassifier& otherwise(Decision d) noexcept;

  /// The first matching rule's decision, or the default.
  [[nodiscard]] Decision classify(const Failure& f) const;

  /// Retry everything (the default of a type registered without a classifier).
  [[nodiscard]] static ErrorClassifier standard() { return ErrorClassifier{}; }

 private:
  std::vector<std::function<std::optional<Decision>(const Failure&)>> rules_;
  Decision default_ = Decision::retry();
};

}  // namespace midas
