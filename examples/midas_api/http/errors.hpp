// SPDX-License-Identifier: MIT
#pragma once

#include <stdexcept>
#include <string>

/// Request errors: answered as `{"message": ...}` alone with their HTTP status, as the original
/// did for bad parameters (400) and unknown slugs (404 "No such agent").
namespace midas_api {

/// A problem with the request itself (not a Midas error of errors.json).
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  /// The HTTP status: 400, 404, 413, 414...
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

/// 400 with `message`.
[[nodiscard]] inline RequestError bad_request(const std::string& message) {
  return RequestError(400, message);
}

/// 404 {"message": "No such agent"}.
[[nodiscard]] inline RequestError no_such_agent() { return RequestError(404, "No such agent"); }

}  // namespace midas_api
