// SPDX-License-Identifier: MIT
#pragma once
/// An attempt record as the JSON text backends store: the same bytes as
/// `nlohmann::json(record).dump(-1, ' ', false, error_handler_t::replace)`, written directly.
/// A worker records one per attempt; building the JSON object first took a fifth of the time
/// its completer thread spent per task in a Redis drain (perf).

#include <string>
#include <string_view>
#include <vector>

#include "midas/task.hpp"

namespace midas::detail {

[[nodiscard]] std::string dump_record(const AttemptRecord& record);

/// A stored history (a JSON array of attempt records) into `out`; false, leaving `out` as it was,
/// if the text is not one. Reads what `dump_record` and Postgres's jsonb write directly (the JSON
/// library's parser had been an eighth of the bench process's perf samples in a Redis retry run),
/// anything else through the JSON library, with the same result.
[[nodiscard]] bool read_history(std::string_view text, std::vector<AttemptRecord>& out);

/// The direct reader alone: false for any text it does not read itself (escapes, non-ASCII,
/// unknown keys, numbers other than small integers, malformed JSON). What it reads equals what the
/// JSON library reads from the same text; tests and the task_json fuzzer check that.
[[nodiscard]] bool read_plain_history(std::string_view text, std::vector<AttemptRecord>& out);

}  // namespace midas::detail
