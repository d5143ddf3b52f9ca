// SPDX-License-Identifier: MIT
#pragma once

#include <string_view>
#include <system_error>

#include "midas/error.hpp"

namespace midas::detail {

/// SQLSTATE -> errc, the one place Postgres errors are mapped.
/// https://www.postgresql.org/docs/current/errcodes-appendix.html
inline std::error_code from_sqlstate(std::string_view s) noexcept {
  if (s.starts_with("08")) return errc::backend_unavailable;  // connection exception
  if (s.starts_with("57P"))
    return errc::backend_unavailable;  // admin/crash shutdown, cannot connect now
  if (s == "40001" || s == "40P01") return errc::conflict;  // serialization failure, deadlock
  if (s == "55P03") return errc::conflict;                  // lock_not_available
  if (s == "57014") return errc::timeout;                   // query_canceled (statement_timeout)
  if (s == "23505") return errc::duplicate_task;            // unique_violation
  if (s == "22P02" || s == "22023")
    return errc::invalid_argument;                   // bad text representation, value
  if (s == "54000") return errc::payload_too_large;  // program_limit_exceeded
  return errc::protocol_error;
}

}  // namespace midas::detail
