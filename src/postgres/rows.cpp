// SPDX-License-Identifier: MIT
#include "rows.hpp"

#include <optional>
#include <string>
#include <vector>

#include "detail/micros.hpp"
#include "detail/record_json.hpp"

namespace midas::detail {

result<Task> task_from_row(const PGresult* r, int row) {
  if (row < 0 || row >= PQntuples(r) || PQnfields(r) < task_column_count) {
    return errc::protocol_error;
  }
  const auto cell = [&](int col) { return cell_text(r, row, col); };
  bool bad = false;
  const auto required = [&](int col) -> std::string {
    const char* v = cell(col);
    if (v == nullptr) bad = true;
    return v != nullptr ? v : "";
  };
  const auto small = [&](int col) -> int {
    auto v = narrow_int(parse_int(required(col)));
    if (!v) bad = true;
    return v.value_or(0);
  };
  const auto time = [&](const char* v) -> TimePoint {
    auto us = parse_int(v != nullptr ? v : "");
    if (!us || !fits_time(*us)) bad = true;
    return from_us(us.value_or(0));
  };
  try {
    Task t;
    t.id = required(0);
    t.type = required(1);
    t.queue = required(2);
    t.params = nlohmann::json::parse(required(3));
    MIDAS_TRY(status, parse_task_status(required(4)));
    t.status = status;
    t.attempt = small(5);
    t.max_attempts = small(6);
    t.priority = small(7);
    t.run_at = time(cell(8));
    if (const char* k = cell(9)) t.unique_key = k;
    t.created_at = time(cell(10));
    t.updated_at = time(cell(11));
    if (const char* f = cell(12)) t.finished_at = time(f);
    if (const char* o = cell(13)) t.lease_owner = o;
    if (const char* e = cell(15)) t.lease_expires_at = time(e);
    if (const char* c = cell(16)) t.checkpoint = nlohmann::json::parse(c);
    if (!read_history(required(17), t.history)) bad = true;
    if (bad) return errc::protocol_error;
    return t;
  } catch (const std::exception&) {
    return errc::protocol_error;
  }
}

}  // namespace midas::detail
