// SPDX-License-Identifier: MIT
#include "crypto/reference_data.hpp"

#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>

#ifndef MIDAS_API_INSTALLED_DATA_DIR
#define MIDAS_API_INSTALLED_DATA_DIR "/usr/local/share/midas/midas_api/data"
#endif

namespace midas_api::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Error bad_data(const fs::path& file, const std::string& what) {
  return Error{ErrorKind::bad_data, file.string() + ": " + what};
}

Expected<json> read_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{ErrorKind::io, "cannot read " + file.string()};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error{ErrorKind::io, "cannot read " + file.string()};
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_data(file, "not valid JSON");
  return j;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

/// Reads optional string field `key` of `obj`; false if present with another type.
bool optional_string(const json& obj, const char* key, std::optional<std::string>& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

/// Parses decimal text ("20.10", "-100.01", "1480") strictly; nullopt otherwise.
std::optional<double> parse_decimal(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t digits = 0;
  bool dot = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '-' && i == 0) continue;
    if (c == '.' && !dot) {
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    ++digits;
  }
  if (digits == 0) return std::nullopt;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

bool has_data(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "mock_users.json", ec);
}

std::optional<fs::path> executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) return std::nullopt;
  return exe.parent_path();
}

}  // namespace

const MockUser* UserStore::find(std::string_view id) const {
  const auto it = users.find(id);
  return it == users.end() ? nullptr : &it->second;
}

const MockUser* UserStore::find_by_email(std::string_view email) const {
  for (const auto& [id, user] : users) {
    if (user.credentials.email && ascii_iequal(*user.credentials.email, email)) return &user;
  }
  return nullptr;
}

const ErrorInfo* ErrorTable::by_class(std::string_view class_name) const {
  for (const auto& e : errors) {
    if (e.class_name == class_name) return &e;
  }
  return nullptr;
}

const ErrorInfo* ErrorTable::by_code(int code) const {
  for (const auto& e : errors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

fs::path installed_data_dir() { return fs::path(MIDAS_API_INSTALLED_DATA_DIR); }

Expected<fs::path> find_data_dir() {
  if (const char* env = std::getenv("MIDAS_DATA_DIR"); env != nullptr && *env != '\0') {
    const fs::path dir(env);
    if (has_data(dir)) return dir;
    return Error{ErrorKind::io, "MIDAS_DATA_DIR=" + dir.string() +
                                    " does not hold mock_users.json (the midas-api data files)"};
  }
  std::string tried = "MIDAS_DATA_DIR (unset)";
  if (const auto exe_dir = executable_dir()) {
    const fs::path dir = *exe_dir / "data";
    if (has_data(dir)) return dir;
    tried += ", " + dir.string();
  }
  const fs::path installed = installed_data_dir();
  if (has_data(installed)) return installed;
  tried += ", " + installed.string();
  return Error{ErrorKind::io, "midas-api data directory not found; tried " + tried +
                                  " (set MIDAS_DATA_DIR to the directory holding mock_users.json)"};
}

Expected<UserStore> load_user_store(const fs::path& dir) {
  const fs::path file = dir / "mock_users.json";
  auto doc = read_json(file);
  if (!doc) return doc.error();
  const json& j = *doc;
  if (!j.is_object() || !j.contains("users") || !j["users"].is_object() ||
      !j.contains("transactions") || !j["transactions"].is_array()) {
    return bad_data(file,
                    "expected an object with \"users\" (object) and \"transactions\" (array)");
  }
  UserStore store;
  for (const auto& [id, u] : j["users"].items()) {
    const std::string where = "user " + id;
    if (!u.is_object()) return bad_data(file, where + " is not an object");
    MockUser user;
    user.id = id;
    const auto len = u.find("len_transactions");
    if (len == u.end() || !len->is_number_integer() || len->get<int>() < 0) {
      return bad_data(file, where + ": len_transactions must be a non-negative integer");
    }
    user.len_transactions = len->get<int>();
    const auto points = u.find("points");
    if (points == u.end() || !points->is_string()) {
      return bad_data(file, where + ": points must be decimal text");
    }
    user.points = points->get<std::string>();
    const auto value = parse_decimal(user.points);
    if (!value) return bad_data(file, where + ": points \"" + user.points + "\" is not a decimal");
    user.points_value = *value;
    const auto creds = u.find("credentials");
    if (creds == u.end() || !creds->is_object()) {
      return bad_data(file, where + ": credentials must be an object");
    }
    auto& c = user.credentials;
    if (!optional_string(*creds, "email", c.email) ||
        !optional_string(*creds, "password", c.password) ||
        !optional_string(*creds, "last_name", c.last_name) ||
        !optional_string(*creds, "postcode", c.postcode) ||
        !optional_string(*creds, "date_of_birth", c.date_of_birth)) {
      return bad_data(file, where + ": a credential field is not a string");
    }
    store.users.emplace(id, std::move(user));
  }
  std::size_t index = 0;
  for (const auto& t : j["transactions"]) {
    const std::string where = "transaction " + std::to_string(index++);
    if (!t.is_object()) return bad_data(file, where + " is not an object");
    crypto::TransactionText tx;
    for (const auto* key : {"date", "description", "points"}) {
      if (!t.contains(key) || !t[key].is_string()) {
        return bad_data(file, where + ": " + key + " must be a string");
      }
    }
    tx.date = t["date"].get<std::string>();
    tx.description = t["description"].get<std::string>();
    tx.points = t["points"].get<std::string>();
    if (!crypto::parse_iso_datetime(tx.date)) {
      return bad_data(file, where + ": date is not ISO 8601");
    }
    if (!parse_decimal(tx.points)) return bad_data(file, where + ": points is not a decimal");
    if (!optional_string(t, "location", tx.location)) {
      return bad_data(file, where + ": location must be a string or null");
    }
    store.transactions.push_back(std::move(tx));
  }
  for (const auto& [id, user] : store.users) {
    if (static_cast<std::size_t>(user.len_transactions) > store.transactions.size()) {
      return bad_data(file, "user " + id + ": len_transactions exceeds the fixed transactions");
    }
  }
  return store;
}

Expected<CardTables> load_card_tables(const fs::path& dir) {
  const fs::path file = dir / "mock_cards.json";
  auto doc = read_json(file);
  if (!doc) return doc.error();
  const json& j = *doc;
  CardTables tables;
  const auto read_table = [&](const char* name,
                              std::map<std::string, std::string, std::less<>>& out) -> bool {
    if (!j.is_object() || !j.contains(name) || !j[name].is_object()) return false;
    for (const auto& [k, v] : j[name].items()) {
      if (!v.is_string()) return false;
      out.emplace(k, v.get<std::string>());
    }
    return true;
  };
  if (!read_table("ICELAND", tables.iceland)) {
    return bad_data(file, "ICELAND must be an object of card number -> user id strings");
  }
  if (!read_table("HARVEY_NICHOLS", tables.harvey_nichols)) {
    return bad_data(file, "HARVEY_NICHOLS must be an object of user id -> card number strings");
  }
  return tables;
}

Expected<ErrorTable> load_error_table(const fs::path& dir) {
  const fs::path file = dir / "errors.json";
  auto doc = read_json(file);
  if (!doc) return doc.error();
  if (!doc->is_array()) return bad_data(file, "expected an array of errors");
  ErrorTable table;
  std::set<int> codes;
  std::set<std::string> classes;
  std::size_t index = 0;
  for (const auto& e : *doc) {
    const std::string where = "error " + std::to_string(index++);
    if (!e.is_object()) return bad_data(file, where + " is not an object");
    for (const auto* key : {"class", "name", "message"}) {
      if (!e.contains(key) || !e[key].is_string() || e[key].get<std::string>().empty()) {
        return bad_data(file, where + ": " + key + " must be a non-empty string");
      }
    }
    if (!e.contains("code") || !e["code"].is_number_integer()) {
      return bad_data(file, where + ": code must be an integer");
    }
    ErrorInfo info;
    info.class_name = e["class"].get<std::string>();
    info.name = e["name"].get<std::string>();
    info.message = e["message"].get<std::string>();
    const auto code = e["code"].get<std::int64_t>();
    if (code < 100 || code > 999) return bad_data(file, info.class_name + ": code out of range");
    info.code = static_cast<int>(code);
    if (const auto it = e.find("system_action_required"); it != e.end()) {
      if (!it->is_boolean()) {
        return bad_data(file, info.class_name + ": system_action_required must be a boolean");
      }
      info.system_action_required = it->get<bool>();
    }
    if (!codes.insert(info.code).second) {
      return bad_data(file, "code " + std::to_string(info.code) + " appears twice");
    }
    if (!classes.insert(info.class_name).second) {
      return bad_data(file, "class " + info.class_name + " appears twice");
    }
    table.errors.push_back(std::move(info));
  }
  if (table.errors.empty()) return bad_data(file, "no errors");
  return table;
}

Expected<ReferenceData> load_reference_data(const fs::path& dir) {
  auto users = load_user_store(dir);
  if (!users) return users.error();
  auto cards = load_card_tables(dir);
  if (!cards) return cards.error();
  auto errors = load_error_table(dir);
  if (!errors) return errors.error();
  return ReferenceData{std::move(*users), std::move(*cards), std::move(*errors)};
}

}  // namespace midas_api::data
