// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/expected.hpp"
#include "crypto/transactions.hpp"

/** The data files midas-api loads at start (examples/midas_api/data, copied from
 *  ../shared/reference): the mock agents' user store and fixed transactions (mock_users.json),
 *  the card tables (mock_cards.json) and the Midas error table (errors.json). Loaded once, then
 *  read-only: safe to share between threads. */
namespace midas_api::data {

using crypto::Error;
using crypto::ErrorKind;
using crypto::Expected;

/// A mock user's stored credentials; a field the file does not give is nullopt.
struct UserCredentials {
  std::optional<std::string> email{};
  std::optional<std::string> password{};
  std::optional<std::string> last_name{};
  std::optional<std::string> postcode{};
  std::optional<std::string> date_of_birth{};
};

/// One entry of the user store, keyed by a 6-digit id ("000000").
struct MockUser {
  std::string id{};
  int len_transactions = 0;  ///< How many of the fixed transactions the user has (0..6).
  UserCredentials credentials{};
  std::string points{};     ///< Decimal text as in the file ("20.10"); hashed and shown from it.
  double points_value = 0;  ///< `points` as a number (20.1), for JSON responses.
};

/// mock_users.json: the users and the fixed transactions every mock user shares a prefix of.
struct UserStore {
  std::map<std::string, MockUser, std::less<>> users{};  ///< By id.
  std::vector<crypto::TransactionText> transactions{};   ///< In file order.

  /// The user with `id`, or nullptr.
  [[nodiscard]] const MockUser* find(std::string_view id) const;
  /// The user whose email equals `email` case-insensitively (ASCII), or nullptr.
  [[nodiscard]] const MockUser* find_by_email(std::string_view email) const;
};

/// mock_cards.json.
struct CardTables {
  std::map<std::string, std::string, std::less<>> iceland{};         ///< Card number -> user id.
  std::map<std::string, std::string, std::less<>> harvey_nichols{};  ///< User id -> card number.
};

/// One Midas error of errors.json.
struct ErrorInfo {
  std::string class_name{};  ///< "StatusLoginFailedError": the key of /error_reference.
  int code = 0;              ///< HTTP status and Hermes status (403).
  std::string name{};        ///< "Invalid credentials" (not unique across classes).
  std::string message{};     ///< The generic message.
  bool system_action_required = false;
};

/// errors.json: every Midas error, in file order.
struct ErrorTable {
  std::vector<ErrorInfo> errors{};

  /// The error of class `class_name`, or nullptr.
  [[nodiscard]] const ErrorInfo* by_class(std::string_view class_name) const;
  /// The error with `code` (codes are unique in errors.json, checked at load), or nullptr.
  [[nodiscard]] const ErrorInfo* by_code(int code) const;
};

/// All three files.
struct ReferenceData {
  UserStore users{};
  CardTables cards{};
  ErrorTable errors{};
};

/** The data directory, the first of: `MIDAS_DATA_DIR` if set (then it must hold the files: no
 *  fallback), `<directory of the running executable>/data`, the installed
 *  `<datadir>/midas/midas_api/data` (compiled in). A candidate counts when it holds
 *  mock_users.json. ErrorKind::io with the places tried if none does. */
[[nodiscard]] Expected<std::filesystem::path> find_data_dir();

/// The installed data directory compiled into the library (may not exist).
[[nodiscard]] std::filesystem::path installed_data_dir();

/// Reads `<dir>/mock_users.json`. ErrorKind::io if unreadable, bad_data naming the entry if a
/// user or transaction lacks a field or has the wrong type.
[[nodiscard]] Expected<UserStore> load_user_store(const std::filesystem::path& dir);

/// Reads `<dir>/mock_cards.json` (both tables required).
[[nodiscard]] Expected<CardTables> load_card_tables(const std::filesystem::path& dir);

/// Reads `<dir>/errors.json`; every entry needs class, code, name and message; codes and class
/// names must be unique.
[[nodiscard]] Expected<ErrorTable> load_error_table(const std::filesystem::path& dir);

/// Loads the three files from `dir`.
[[nodiscard]] Expected<ReferenceData> load_reference_data(const std::filesystem::path& dir);

}  // namespace midas_api::data
