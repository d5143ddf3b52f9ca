// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <system_error>

namespace midas {

/// Every error midas itself reports. 0 is never an error.
///
/// What to do with each is in the README's error table; `is_transient()` says which ones a caller
/// may simply try again.
enum class errc {
  backend_unavailable = 1,  ///< Connect failed or connection dropped; retryable.
  timeout,                  ///< Deadline exceeded; retryable.
  conflict,                 ///< Lost a race (serialization failure, deadlock); retryable.
  in_doubt,                 ///< Ack sent, reply lost: outcome unknown. Never retried blindly.
  protocol_error,           ///< The backend replied with something unexpected.
  task_not_found,           ///< No task has this id (or it was pruned).
  duplicate_task,           ///< Another unfinished task holds this unique key.
  invalid_payload,          ///< Params are not valid JSON for the task type.
  invalid_argument,         ///< A caller passed a value midas cannot use (empty type, bad name).
  invalid_url,              ///< A backend URL that cannot be parsed.
  unsupported_scheme,       ///< A backend URL whose scheme midas does not know.
  backend_not_built,        ///< The backend exists but this build of midas left it out.
  lease_lost,         ///< The lease expired or was taken over; the worker no longer owns the task.
  invalid_state,      ///< The task's status does not allow this (e.g. cancel of a running task).
  unknown_task_type,  ///< No handler is registered for the task's type.
  payload_too_large,  ///< Params larger than the backend accepts.
  handler_decision,   ///< A handler returned a decision through its TaskContext (snooze, cancel,
                      ///< ...).
  handler_exception,  ///< A handler threw; the classifier saw the exception itself.
};

/// The category of `midas::errc` codes; its name is "midas".
[[nodiscard]] const std::error_category& error_category() noexcept;

/// Lets `errc` values convert to `std::error_code`.
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// True for errors that go away by themselves (unavailable, timeout, conflict): try again later.
/// `errc::in_doubt` is deliberately not transient: the operation may have taken effect.
[[nodiscard]] bool is_transient(const std::error_code& ec) noexcept;

/// The category of HTTP status codes carried as `std::error_code` (value = the status).
[[nodiscard]] const std::error_category& http_category() noexcept;

/// An HTTP status as an error code, so `result<void>` handlers can report one.
[[nodiscard]] inline std::error_code make_http_error(int status) noexcept {
  return {status, http_category()};
}

}  // namespace midas

template <>
struct std::is_error_code_enum<midas::errc> : std::true_type {};
