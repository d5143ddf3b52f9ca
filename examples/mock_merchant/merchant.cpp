// SPDX-License-Identifier: MIT
#include "merchant.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <regex>
#include <stdexcept>

#include "signer.hpp"

namespace mock_merchant {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

std::mutex log_mutex;

std::string now_iso() {
  const auto now = Clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = Clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string lower_trim(std::string s) {
  auto not_space = [](unsigned char c) { return std::isspace(c) == 0; };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, json{{"error", message}});
}

/// The merchant's own error answer: HTTP 200 with error_codes, as the Iceland API did.
void reply_codes(httplib::Response& res, const std::string& code, const std::string& description,
                 const json& echo) {
  json body = echo;
  body["error_codes"] = json::array({json{{"code", code}, {"description", description}}});
  reply(res, 200, body);
}

std::optional<json> parse_object(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string string_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool all_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

/// Splits "http://host:port/path" into ("http://host:port", "/path").
std::optional<std::pair<std::string, std::string>> split_url(const std::string& url) {
  static const std::regex re(R"(^(https?://[^/?#]+)([/?].*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return std::nullopt;
  std::string path = m[2].matched ? m[2].str() : "/";
  if (path.front() == '?') path.insert(0, "/");
  return std::make_pair(m[1].str(), path);
}

/// Ends the connection the request came in on, without an answer: finds our socket whose peer is
/// the request's remote address and port, and shuts it down (httplib gives handlers no socket).
bool drop_connection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool dropped = false;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (!all_digits(name)) continue;
    const int fd = std::stoi(name);
    struct stat st {};
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    char ip[INET6_ADDRSTRLEN] = {};
    int port = -1;
    if (peer.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
      port = ntohs(in->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
      port = ntohs(in6->sin6_port);
    } else {
      continue;
    }
    if (port != req.remote_port || req.remote_addr != ip) continue;
    sockaddr_storage local{};
    len = sizeof local;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
    const int local_port = local.ss_family == AF_INET
                               ? ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port)
                               : ntohs(reinterpret_cast<const sockaddr_in6*>(&local)->sin6_port);
    if (local_port != req.local_port) continue;  // our own outgoing client socket, not this one
    linger lg{1, 0};                             // close() then resets instead of lingering
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    shutdown(fd, SHUT_RDWR);
    dropped = true;
    break;
  }
  closedir(dir);
  return dropped;
}

json headers_json(const httplib::Request& req) {
  json h = json::object();
  for (const auto& [name, value] : req.headers) {
    if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
        name == "LOCAL_PORT") {
      continue;  // httplib's pseudo-headers
    }
    std::string key = name;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    h[key] = value;
  }
  return h;
}

User user_from_json(const json& u) {
  User user;
  user.card_number = u.at("card_number").get<std::string>();
  user.barcode = u.value("barcode", user.card_number);
  user.merchant_scheme_id2 = u.value("merchant_scheme_id2", "");
  user.last_name = u.at("last_name").get<std::string>();
  user.postcode = u.at("postcode").get<std::string>();
  user.email = u.value("email", "");
  user.balance = u.value("balance", json(0));
  if (!user.balance.is_number()) throw std::runtime_error("balance is not a number");
  user.transactions = u.value("transactions", json::array());
  if (!user.transactions.is_array()) throw std::runtime_error("transactions is not a list");
  user.login_error = u.value("login_error", "");
  return user;
}

json user_to_json(const User& u) {
  json j{{"card_number", u.card_number},
         {"barcode", u.barcode},
         {"merchant_scheme_id2", u.merchant_scheme_id2},
         {"last_name", u.last_name},
         {"postcode", u.postcode},
         {"email", u.email},
         {"balance", u.balance},
         {"transactions", u.transactions}};
  if (!u.login_error.empty()) j["login_error"] = u.login_error;
  return j;
}

json echo_ids(const json& body) {
  json echo = json::object();
  for (const char* key : {"message_uid", "record_uid"}) {
    if (auto it = body.find(key); it != body.end()) echo[key] = *it;
  }
  return echo;
}

}  // namespace

void log_line(const std::string& level, const std::string& event, json fields) {
  if (!fields.is_object()) fields = json::object();
  json line{{"time", now_iso()}, {"level", level}, {"event", event}};
  line.update(fields);
  const std::string text = dump(line);
  std::lock_guard lock(log_mutex);
  std::cerr << text << '\n' << std::flush;
}

MockMerchant::MockMerchant(Options options)
    : options_(std::move(options)), signer_(std::make_unique<Signer>(options_.private_key_pem)) {
  load_users();
  callback_thread_ = std::thread([this] { callback_loop(); });
}

MockMerchant::~MockMerchant() { stop(); }

void MockMerchant::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (callback_thread_.joinable()) callback_thread_.join();
}

void MockMerchant::load_users() {
  const json doc = json::parse(options_.users_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("users") ||
      !doc["users"].is_array()) {
    throw std::runtime_error("users: not a JSON object with a \"users\" list");
  }
  std::vector<User> users;
  for (const auto& u : doc["users"]) {
    try {
      users.push_back(user_from_json(u));
    } catch (const std::exception& e) {
      throw std::runtime_error("users: bad entry " + dump(u).substr(0, 80) + ": " + e.what());
    }
  }
  std::lock_guard lock(mutex_);
  ghost_card_prefix_ = doc.value("ghost_card_prefix", "");
  users_ = std::move(users);
  joined_ = 0;
}

void MockMerchant::interruptible_sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, d, [this] { return stopping_; });
}

void MockMerchant::handle(const httplib::Request& req, httplib::Response& res) {
  if (starts_with(req.path, "/_")) {
    handle_admin(req, res);
    return;
  }
  const std::optional<Fault> fault = take_fault(req);
  record_call(req, fault);
  if (fault && apply_fault(*fault, req, res)) return;

  if (req.path == "/merchant/login") {
    if (req.method != "POST") return reply_error(res, 405, "use POST");
    handle_login(req, res);
  } else if (req.path == "/merchant/join") {
    if (req.method != "POST") return reply_error(res, 405, "use POST");
    handle_join(req, res, fault ? fault->callback_error_code : std::string{});
  } else if (starts_with(req.path, "/hermes/") || req.path == "/hermes") {
    handle_stub("hermes", req, res);
  } else if (starts_with(req.path, "/hades/") || req.path == "/hades") {
    handle_stub("hades", req, res);
  } else {
    reply(res, 404, json{{"error", "not found"}, {"path", req.path}});
  }
}

std::optional<Fault> MockMerchant::take_fault(const httplib::Request& req) {
  std::lock_guard lock(mutex_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!starts_with(req.path, it->path_prefix)) continue;
    if (!it->method.empty() && it->method != req.method) continue;
    Fault taken = *it;
    if (it->times > 0 && --it->times == 0) faults_.erase(it);
    return taken;
  }
  return std::nullopt;
}

void MockMerchant::record_call(const httplib::Request& req, const std::optional<Fault>& fault) {
  json call{{"method", req.method},
            {"path", req.path},
            {"headers", headers_json(req)},
            {"time", now_iso()},
            {"epoch_ms", epoch_ms()}};
  json query = json::object();
  if (const auto q = req.target.find('?'); q != std::string::npos) {
    httplib::Params params;  // req.params also holds form fields of the body: not wanted here
    httplib::detail::parse_query_text(req.target.substr(q + 1), params);
    for (const auto& [k, v] : params) query[k] = v;
  }
  call["query"] = query;
  if (req.body.empty()) {
    call["body"] = nullptr;
  } else {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
      call["body"] = nullptr;
      call["body_text"] = req.body.substr(0, 65536);
    } else {
      call["body"] = std::move(body);
    }
  }
  if (fault) {
    call["fault"] = json{{"id", fault->id},
                         {"status", fault->status},
                         {"delay_ms", fault->delay_ms},
                         {"drop_connection", fault->drop_connection}};
    if (!fault->callback_error_code.empty()) {
      call["fault"]["callback_error_code"] = fault->callback_error_code;
    }
  }
  std::lock_guard lock(mutex_);
  call["seq"] = ++call_seq_;
  calls_.push_back(std::move(call));
  if (calls_.size() > options_.max_calls) {
    calls_.erase(calls_.begin(),
                 calls_.begin() + static_cast<std::ptrdiff_t>(calls_.size() - options_.max_calls));
  }
}

bool MockMerchant::apply_fault(const Fault& fault, const httplib::Request& req,
                               httplib::Response& res) {
  if (fault.delay_ms > 0) interruptible_sleep(std::chrono::milliseconds{fault.delay_ms});
  if (fault.drop_connection) {
    const bool dropped = drop_connection(req);
    log_line("info", "fault_drop_connection",
             {{"path", req.path}, {"method", req.method}, {"dropped", dropped}});
    if (!dropped) reply_error(res, 500, "injected fault: could not drop the connection");
    return true;
  }
  if (fault.status != 0) {
    reply(res, fault.status,
          fault.body ? *fault.body : json{{"error", "injected fault"}, {"status", fault.status}});
    return true;
  }
  return false;  // a delay-only fault: answer normally, late
}

void MockMerchant::handle_admin(const httplib::Request& req, httplib::Response& res) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  if (p == "/_health" && m == "GET") {
    reply(res, 200, json{{"status", "ok"}});
  } else if (p == "/_calls" && m == "GET") {
    const std::string prefix = req.get_param_value("path_prefix");
    const std::string method = req.get_param_value("method");
    json out = json::array();
    std::lock_guard lock(mutex_);
    for (const auto& c : calls_) {
      if (!starts_with(c["path"].get<std::string>(), prefix)) continue;
      if (!method.empty() && c["method"] != method) continue;
      out.push_back(c);
    }
    reply(res, 200, out);
  } else if (p == "/_calls" && m == "DELETE") {
    std::lock_guard lock(mutex_);
    calls_.clear();
    res.status = 204;
  } else if (p == "/_faults" && m == "GET") {
    json out = json::array();
    std::lock_guard lock(mutex_);
    for (const auto& f : faults_) {
      json j{{"id", f.id},
             {"path_prefix", f.path_prefix},
             {"status", f.status},
             {"times", f.times},
             {"delay_ms", f.delay_ms},
             {"drop_connection", f.drop_connection}};
      if (!f.method.empty()) j["method"] = f.method;
      if (f.body) j["body"] = *f.body;
      out.push_back(std::move(j));
    }
    reply(res, 200, out);
  } else if (p == "/_faults" && m == "POST") {
    add_faults(req, res);
  } else if (p == "/_faults" && m == "DELETE") {
    std::lock_guard lock(mutex_);
    faults_.clear();
    res.status = 204;
  } else if (p == "/_callbacks" && m == "GET") {
    std::lock_guard lock(mutex_);
    reply(res, 200, json(callbacks_));
  } else if (p == "/_callbacks" && m == "DELETE") {
    std::lock_guard lock(mutex_);
    callbacks_.clear();
    res.status = 204;
  } else if (p == "/_callback" && m == "POST") {
    send_callback_now(req, res);
  } else if (p == "/_users" && m == "GET") {
    json out = json::array();
    std::lock_guard lock(mutex_);
    for (const auto& u : users_) out.push_back(user_to_json(u));
    reply(res, 200, out);
  } else if (p == "/_reset" && m == "POST") {
    load_users();
    std::lock_guard lock(mutex_);
    calls_.clear();
    faults_.clear();
    callbacks_.clear();
    pending_.clear();
    res.status = 204;
  } else {
    reply(res, 404, json{{"error", "not found"}, {"path", p}, {"method", m}});
  }
}

void MockMerchant::add_faults(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) return reply_error(res, 400, "body is not JSON");
  if (body.is_object()) body = json::array({body});
  if (!body.is_array() || body.empty()) {
    return reply_error(res, 400, "expected a fault object or a list of them");
  }
  std::vector<Fault> parsed;
  for (const auto& f : body) {
    if (!f.is_object()) return reply_error(res, 400, "a fault must be an object");
    Fault fault;
    const auto prefix = f.find("path_prefix");
    if (prefix == f.end() || !prefix->is_string()) {
      return reply_error(res, 400, "path_prefix (string) is required");
    }
    fault.path_prefix = prefix->get<std::string>();
    if (starts_with(fault.path_prefix, "/_")) {
      return reply_error(res, 400, "faults cannot target the /_ control endpoints");
    }
    if (f.contains("method")) {
      if (!f["method"].is_string()) return reply_error(res, 400, "method must be a string");
      fault.method = f["method"].get<std::string>();
    }
    if (f.contains("status") && !f["status"].is_null()) {
      if (!f["status"].is_number_integer()) return reply_error(res, 400, "status: integer");
      fault.status = f["status"].get<int>();
      if (fault.status != 0 && (fault.status < 100 || fault.status > 599)) {
        return reply_error(res, 400, "status must be 100..599 (or 0 for none)");
      }
    }
    if (f.contains("times")) {
      if (!f["times"].is_number_integer()) return reply_error(res, 400, "times: integer");
      fault.times = f["times"].get<int>();
      if (fault.times == 0 || fault.times < -1) {
        return reply_error(res, 400, "times must be >= 1, or -1 for every request");
      }
    }
    if (f.contains("delay_ms")) {
      if (!f["delay_ms"].is_number_integer()) return reply_error(res, 400, "delay_ms: integer");
      fault.delay_ms = f["delay_ms"].get<std::int64_t>();
      if (fault.delay_ms < 0 || fault.delay_ms > 600000) {
        return reply_error(res, 400, "delay_ms must be 0..600000");
      }
    }
    if (f.contains("drop_connection")) {
      if (!f["drop_connection"].is_boolean()) {
        return reply_error(res, 400, "drop_connection: boolean");
      }
      fault.drop_connection = f["drop_connection"].get<bool>();
    }
    if (f.contains("body")) fault.body = f["body"];
    if (f.contains("callback_error_code")) {
      if (!f["callback_error_code"].is_string() ||
          f["callback_error_code"].get<std::string>().empty()) {
        return reply_error(res, 400, "callback_error_code: non-empty string");
      }
      fault.callback_error_code = f["callback_error_code"].get<std::string>();
    }
    if (fault.status == 0 && fault.delay_ms == 0 && !fault.drop_connection &&
        fault.callback_error_code.empty()) {
      return reply_error(
          res, 400, "a fault needs a status, a delay_ms, drop_connection or callback_error_code");
    }
    parsed.push_back(std::move(fault));
  }
  json ids = json::array();
  {
    std::lock_guard lock(mutex_);
    for (auto& f : parsed) {
      f.id = ++fault_seq_;
      ids.push_back(f.id);
      faults_.push_back(std::move(f));
    }
  }
  log_line("info", "faults_added", {{"ids", ids}});
  reply(res, 201, json{{"ids", ids}});
}

void MockMerchant::handle_login(const httplib::Request& req, httplib::Response& res) {
  if (!options_.api_key.empty() &&
      req.get_header_value("Authorization") != "Token " + options_.api_key) {
    return reply(res, 401, json{{"error", "missing or wrong Authorization token"}});
  }
  const auto body = parse_object(req.body);
  if (!body) return reply_error(res, 400, "body must be a JSON object");
  const json echo = echo_ids(*body);
  const std::string card = string_field(*body, "card_number");
  const std::string last_name = string_field(*body, "last_name");
  const std::string postcode = string_field(*body, "postcode");
  if (card.empty() || last_name.empty() || postcode.empty()) {
    return reply_codes(res, "VALIDATION", "card_number, last_name and postcode are required", echo);
  }
  if (!all_digits(card)) return reply_codes(res, "CARD_NUMBER_ERROR", "invalid card number", echo);

  std::lock_guard lock(mutex_);
  if (!ghost_card_prefix_.empty() && starts_with(card, ghost_card_prefix_)) {
    return reply_codes(res, "PRE_REGISTERED_ERROR", "card is not registered yet", echo);
  }
  const auto user = std::find_if(users_.begin(), users_.end(),
                                 [&](const User& u) { return u.card_number == card; });
  if (user == users_.end()) {
    return reply_codes(res, "CARD_NOT_REGISTERED", "unknown card number", echo);
  }
  if (!user->login_error.empty()) {
    return reply_codes(res, user->login_error, "login refused for this card", echo);
  }
  if (lower_trim(user->last_name) != lower_trim(last_name) ||
      lower_trim(user->postcode) != lower_trim(postcode)) {
    return reply_codes(res, "VALIDATION", "last name or postcode do not match", echo);
  }
  json out = echo;
  out["balance"] = user->balance;
  out["transactions"] = user->transactions;
  out["barcode"] = user->barcode;
  out["card_number"] = user->card_number;
  out["merchant_scheme_id2"] = user->merchant_scheme_id2;
  reply(res, 200, out);
}

void MockMerchant::handle_join(const httplib::Request& req, httplib::Response& res,
                               const std::string& callback_error_code) {
  if (!options_.api_key.empty() &&
      req.get_header_value("Authorization") != "Token " + options_.api_key) {
    return reply(res, 401, json{{"error", "missing or wrong Authorization token"}});
  }
  const auto body = parse_object(req.body);
  if (!body) return reply_error(res, 400, "body must be a JSON object");
  const json echo = echo_ids(*body);
  for (const char* field : {"first_name", "last_name", "email", "postcode"}) {
    if (string_field(*body, field).empty()) {
      return reply_codes(res, "VALIDATION", std::string("missing field: ") + field, echo);
    }
  }
  std::string url = options_.callback_url;
  if (url.empty()) url = string_field(*body, "callback_url");

  json result = echo;
  const std::string email = lower_trim(string_field(*body, "email"));
  const std::string postcode = lower_trim(string_field(*body, "postcode"));
  std::string card = string_field(*body, "card_number");
  {
    std::lock_guard lock(mutex_);
    const bool exists = std::any_of(users_.begin(), users_.end(), [&](const User& u) {
      return lower_trim(u.email) == email || (!card.empty() && u.card_number == card);
    });
    if (!callback_error_code.empty()) {
      result["error_codes"] =
          json::array({json{{"code", callback_error_code}, {"description", "injected fault"}}});
    } else if (exists) {
      result["error_codes"] =
          json::array({json{{"code", "ACCOUNT_ALREADY_EXISTS"},
                            {"description", "an account with this email or card exists"}}});
    } else if (postcode == "fail" || postcode == "fa1 1fa") {
      result["error_codes"] =
          json::array({json{{"code", "JOIN_ERROR"}, {"description", "the join failed"}}});
    } else {
      ++joined_;
      char digits[16];
      std::snprintf(digits, sizeof digits, "%010llu", static_cast<unsigned long long>(joined_));
      if (card.empty()) card = std::string("633204009") + digits;
      User user;
      user.card_number = card;
      user.barcode = card + "0";
      user.merchant_scheme_id2 = std::string("MS2-J") + digits;
      user.last_name = string_field(*body, "last_name");
      user.postcode = string_field(*body, "postcode");
      user.email = string_field(*body, "email");
      users_.push_back(user);
      result["barcode"] = user.barcode;
      result["card_number"] = user.card_number;
      result["merchant_scheme_id2"] = user.merchant_scheme_id2;
    }
    if (!url.empty()) {
      pending_.emplace(std::chrono::steady_clock::now() + options_.callback_delay,
                       PendingCallback{url, dump(result)});
    } else {
      callbacks_.push_back(json{{"time", now_iso()},
                                {"body", result},
                                {"error", "no callback URL (flag or callback_url field)"}});
    }
  }
  wake_.notify_all();
  json accepted = echo;
  accepted["status"] = "accepted";
  reply(res, 202, accepted);
}

void MockMerchant::handle_stub(const std::string& service, const httplib::Request& req,
                               httplib::Response& res) {
  if (req.method == "DELETE") {
    res.status = 204;
  } else if (req.method == "POST" && service == "hades") {
    reply(res, 201, json::object());
  } else {
    reply(res, 200, json::object());
  }
}

void MockMerchant::callback_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (pending_.empty()) {
      wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      continue;
    }
    const auto due = pending_.begin()->first;
    if (std::chrono::steady_clock::now() < due) {
      wake_.wait_until(lock, due);
      continue;
    }
    PendingCallback cb = std::move(pending_.begin()->second);
    pending_.erase(pending_.begin());
    lock.unlock();
    const auto ts = static_cast<std::int64_t>(std::time(nullptr));
    std::string signature;
    try {
      signature = signer_->sign_callback(cb.body, ts);
    } catch (const std::exception& e) {
      log_line("error", "callback_sign_failed", {{"error", e.what()}});
    }
    json record = deliver_callback(cb.url, cb.body, ts, signature);
    lock.lock();
    callbacks_.push_back(std::move(record));
  }
}

json MockMerchant::deliver_callback(const std::string& url, const std::string& body,
                                    std::int64_t timestamp, const std::string& signature) {
  json record{{"time", now_iso()},
              {"epoch_ms", epoch_ms()},
              {"url", url},
              {"timestamp", timestamp},
              {"body", json::parse(body, nullptr, false)}};
  if (record["body"].is_discarded()) record["body"] = body;
  const auto parts = split_url(url);
  if (!parts) {
    record["error"] = "invalid callback URL";
    log_line("error", "callback_failed", {{"url", url}, {"error", "invalid URL"}});
    return record;
  }
  httplib::Client client(parts->first);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Headers headers{{"X-REQ-TIMESTAMP", std::to_string(timestamp)}};
  if (!signature.empty()) headers.emplace("Authorization", "Signature " + signature);
  auto result = client.Post(parts->second.c_str(), headers, body, "application/json");
  if (!result) {
    record["error"] = httplib::to_string(result.error());
    log_line("error", "callback_failed", {{"url", url}, {"error", record["error"]}});
    return record;
  }
  record["status"] = result->status;
  json response = json::parse(result->body, nullptr, false);
  record["response"] = response.is_discarded() ? json(result->body) : response;
  log_line("info", "callback_sent", {{"url", url}, {"status", result->status}});
  return record;
}

void MockMerchant::send_callback_now(const httplib::Request& req, httplib::Response& res) {
  const auto spec = parse_object(req.body);
  if (!spec) return reply_error(res, 400, "body must be a JSON object");
  std::string text;
  if (spec->contains("body_text") && (*spec)["body_text"].is_string()) {
    text = (*spec)["body_text"].get<std::string>();
  } else if (spec->contains("body")) {
    text = dump((*spec)["body"]);
  } else {
    return reply_error(res, 400, "body (JSON) or body_text (string) is required");
  }
  std::string url = string_field(*spec, "url");
  if (url.empty()) url = options_.callback_url;
  if (url.empty()) return reply_error(res, 400, "url is required (no --callback-url set)");
  std::int64_t ts = static_cast<std::int64_t>(std::time(nullptr));
  if (spec->contains("timestamp")) {
    if (!(*spec)["timestamp"].is_number_integer()) return reply_error(res, 400, "timestamp: int");
    ts = (*spec)["timestamp"].get<std::int64_t>();
  }
  std::string signature;
  if (!spec->value("omit_signature", false)) {
    signature = signer_->sign_callback(text, ts);
  }
  if (spec->value("tamper", false)) text += " ";  // signed text no longer matches
  json record = deliver_callback(url, text, ts, signature);
  record["signature"] = signature;
  {
    std::lock_guard lock(mutex_);
    callbacks_.push_back(record);
  }
  reply(res, 200, record);
}

}  // namespace mock_merchant
