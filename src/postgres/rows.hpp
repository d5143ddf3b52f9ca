// SPDX-License-Identifier: MIT
#pragma once
/// Reading a task row back from Postgres. Separate from the queue so the fuzz target `pg_row`
/// can feed it rows made from arbitrary bytes.

#include <libpq-fe.h>

#include <string_view>

#include "midas/result.hpp"
#include "midas/task.hpp"

namespace midas::detail {

/// The text of a cell; nullptr for SQL NULL.
[[nodiscard]] inline const char* cell_text(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) ? nullptr : PQgetvalue(r, row, col);
}

/// The columns of a task row (task_columns in postgres_queue.cpp, in that order).
inline constexpr int task_column_count = 18;

/// Row `row` of `r` as a Task. A result with fewer columns, a number or time out of range, or
/// JSON that does not parse or does not hold an attempt history is protocol_error.
[[nodiscard]] result<Task> task_from_row(const PGresult* r, int row);

}  // namespace midas::detail
