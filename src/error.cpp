// SPDX-License-Identifier: MIT
#include "midas/error.hpp"

#include <string>

namespace midas {
namespace {

class Category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "midas"; }

  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::backend_unavailable:
        return "backend unavailable: the connection failed or dropped; retry later";
      case errc::timeout:
        return "timed out";
      case errc::conflict:
        return "conflict with a concurrent operation; retry";
      case errc::in_doubt:
        return "outcome unknown: the request was sent but its reply was lost";
      case errc::protocol_error:
        return "unexpected reply from the backend";
      case errc::task_not_found:
        return "no such task";
      case errc::duplicate_task:
        return "an unfinished task already holds this unique key";
      case errc::invalid_payload:
        return "params do not fit the task type";
      case errc::invalid_argument:
        return "invalid argument";
      case errc::invalid_url:
        return "invalid backend URL";
      case errc::unsupported_scheme:
        return "unsupported backend URL scheme (use memory://, postgresql:// or redis://)";
      case errc::backend_not_built:
        return "this backend is not available in this build of midas";
      case errc::lease_lost:
        return "lease lost: another worker owns the task now";
      case errc::invalid_state:
        return "the task's status does not allow this operation";
      case errc::unknown_task_type:
        return "no handler is registered for this task type";
      case errc::payload_too_large:
        return "params are larger than the backend accepts";
      case errc::handler_decision:
        return "the handler decided the outcome";
      case errc::handler_exception:
        return "the handler threw an exception";
    }
    return "unknown midas error " + std::to_string(ev);
  }

  [[nodiscard]] std::error_condition default_error_condition(int ev) const noexcept override {
    if (static_cast<errc>(ev) == errc::timeout) return std::errc::timed_out;
    return {ev, *this};
  }
};

class HttpCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "http"; }
  [[nodiscard]] std::string message(int ev) const override { return "HTTP " + std::to_string(ev); }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

const std::error_category& http_category() noexcept {
  static const HttpCategory category;
  return category;
}

bool is_transient(const std::error_code& ec) noexcept {
  return ec == errc::backend_unavailable || ec == errc::timeout || ec == errc::conflict;
}

}  // namespace midas
