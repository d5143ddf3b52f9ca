// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/// Transaction hashes and date formats of the original Midas (`BaseAgent.hash_transactions`).
namespace midas_api::crypto {

/// The text fields of a transaction, as the original hashed them.
struct TransactionText {
  std::string date{};         ///< ISO 8601 as Python's str(Arrow): "2018-07-01T14:24:15+00:00".
  std::string description{};  ///< As given by the merchant.
  std::string points{};       ///< Decimal text as Python's str(Decimal): "20.71", "-100.01", "200".
  std::optional<std::string> location{};  ///< Absent (JSON null) hashes as "".
};

/// Lower-case hex MD5 of `bytes` (32 characters).
[[nodiscard]] std::string md5_hex(std::string_view bytes);

/** The transaction hashes of one response, in order. For each transaction
 *  s = date + description + points + str(scheme_account_id) + (location or ""), then the number
 *  of earlier transactions of this list with the same s ("0", "1", ...) is appended, and the hash
 *  is md5_hex(s). Two identical transactions thus get different hashes. */
[[nodiscard]] std::vector<std::string> hash_transactions(std::span<const TransactionText> txs,
                                                         std::int64_t scheme_account_id);

/// "YYYY-MM-DDTHH:MM:SS+00:00": the UTC form of str(Arrow), the date text that is hashed.
[[nodiscard]] std::string iso_datetime(std::chrono::sys_seconds t);

/// "YYYY-MM-DD HH:MM:SS+00:00": the date of a transaction in a JSON response.
[[nodiscard]] std::string response_datetime(std::chrono::sys_seconds t);

/** Parses "YYYY-MM-DDTHH:MM:SS" (a space instead of the 'T' is accepted) followed by "Z" or a
 *  "+HH:MM"/"-HH:MM" offset, fractional seconds ignored; returns the UTC time, or nullopt for
 *  anything else (including impossible dates such as February 30). */
[[nodiscard]] std::optional<std::chrono::sys_seconds> parse_iso_datetime(std::string_view text);

}  // namespace midas_api::crypto
