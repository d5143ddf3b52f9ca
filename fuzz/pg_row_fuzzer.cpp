// SPDX-License-Identifier: MIT
// What the Postgres backend reads from the server: a task row. The input is cut at NUL bytes into
// the row's 18 cells (a cell of a single 0xFF byte, or a missing one, is SQL NULL), made into a
// real PGresult with libpq's result-building calls, and read back with task_from_row. A row must
// give a Task or protocol_error, never crash.
#include <libpq-fe.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rows.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr int columns = midas::detail::task_column_count;
  PGresult* r = PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK);
  if (r == nullptr) return 0;
  std::array<PGresAttDesc, columns> attrs{};
  static char name[] = "c";
  for (auto& a : attrs) {
    a.name = name;
    a.typid = 25;  // text
    a.typlen = -1;
    a.atttypmod = -1;
  }
  if (PQsetResultAttrs(r, columns, attrs.data()) != 0) {
    std::string_view rest{reinterpret_cast<const char*>(data), size};
    for (int col = 0; col < columns; ++col) {
      const bool missing = rest.empty() && col > 0;
      const auto cut = rest.find('\0');
      std::string_view cell = rest.substr(0, cut);
      rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + 1);
      const bool null = missing || cell == "\xff";
      // PQsetvalue copies the bytes; -1 is NULL.
      PQsetvalue(r, 0, col, null ? nullptr : const_cast<char*>(cell.data()),
                 null ? -1 : static_cast<int>(cell.size()));
    }
    auto task = midas::detail::task_from_row(r, 0);
    if (task) {
      const nlohmann::json j = task.value();
      (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    (void)midas::detail::task_from_row(r, 1);  // a row that is not there
  }
  PQclear(r);
  return 0;
}
