// SPDX-License-Identifier: MIT
#pragma once
/// An attempt record as the JSON text backends store: the same bytes as
/// `nlohmann::json(record).dump(-1, ' ', false, error_handler_t::replace)`, written directly.
/// A worker records one per attempt; building the JSON object first took a fifth of the time
/// its completer thread spent per task in a Redis drain (perf).

#include <string>

#include "midas/task.hpp"

namespace midas::detail {

[[nodiscard]] std::string dump_record(const AttemptRecord& record);

}  // namespace midas::detail
