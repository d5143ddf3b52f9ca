// SPDX-License-Identifier: MIT
// The durable join's routes: POST /{slug}/join and /{slug}/register, the merchant callback
// POST /join/merchant/{slug}, and the task history for operators (GET /tasks, /tasks/{id}).

#include <httplib.h>

#include <charconv>
#include <chrono>
#include <cstdlib>

#include "crypto/base64.hpp"
#include "crypto/credentials.hpp"
#include "crypto/hashids.hpp"
#include "crypto/signature.hpp"
#include "http/app.hpp"
#include "http/errors.hpp"
#include "journeys/join.hpp"

namespace midas_api {
namespace {

using nlohmann::json;

json parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw bad_request("The body must be a JSON object.");
  return j;
}

std::int64_t int_field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    throw bad_request(std::string("Missing required field \"") + key + "\".");
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {  // the original took int(...) of what it got
    if (auto v = parse_int64(it->get_ref<const std::string&>())) return *v;
  }
  throw bad_request(std::string("Field \"") + key + "\" must be an integer.");
}

std::string text_field(const json& body, const char* key, std::size_t max_bytes) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    throw bad_request(std::string("Missing required field \"") + key + "\".");
  }
  if (!it->is_string() || it->get_ref<const std::string&>().size() > max_bytes) {
    throw bad_request(std::string("Field \"") + key + "\" must be a string of at most " +
                      std::to_string(max_bytes) + " bytes.");
  }
  return it->get<std::string>();
}

// The task as operators see it; the credentials stay out of the answer even encrypted.
json task_view(const midas::Task& task) {
  json j = task;
  if (auto p = j.find("params"); p != j.end() && p->is_object()) {
    if (auto u = p->find("user_info");
        u != p->end() && u->is_object() && u->contains("credentials")) {
      (*u)["credentials"] = "[encrypted, not shown]";
    }
  }
  return j;
}

void backend_unavailable(httplib::Response& res, const std::error_code& ec, const char* what) {
  write_json(res, 503,
             {{"message",
               std::string("The task backend is not reachable (") + ec.message() + "); " + what}});
}

void install_task_routes(httplib::Server& server, Services& s) {
  server.Get(R"(/tasks/(.+))",  // Redis ids hold a slash: "midas-retry/42"
             guarded(s, "task", [&s](const httplib::Request& req, httplib::Response& res) {
               const std::string id = req.matches[1].str();
               auto task = s.queue->get(id);
               if (!task) {
                 if (midas::is_transient(task.error())) {
                   backend_unavailable(res, task.error(), "try again.");
                   return;
                 }
                 throw RequestError(404, "No such task.");
               }
               write_json(res, 200, task_view(task.value()));
             }));

  server.Get(
      "/tasks", guarded(s, "tasks", [&s](const httplib::Request& req, httplib::Response& res) {
        midas::ListFilter filter;
        if (req.has_param("status")) {
          auto status = midas::parse_task_status(req.get_param_value("status"));
          if (!status) {
            throw bad_request(
                "Parameter \"status\" must be one of pending, running, retrying, succeeded, "
                "failed, "
                "cancelled.");
          }
          filter.status = status.value();
        }
        if (req.has_param("type")) filter.type = req.get_param_value("type");
        if (req.has_param("queue")) filter.queue = req.get_param_value("queue");
        const auto number = [&](const char* key, std::size_t fallback, std::size_t max) {
          if (!req.has_param(key)) return fallback;
          const std::string v = req.get_param_value(key);
          std::size_t n = 0;
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
          if (ec != std::errc{} || p != v.data() + v.size() || n > max) {
            throw bad_request(std::string("Parameter \"") + key +
                              "\" must be an integer from 0 to " + std::to_string(max) + ".");
          }
          return n;
        };
        filter.limit = number("limit", 50, 1000);
        filter.offset = number("offset", 0, 1'000'000);
        auto tasks = s.queue->list(filter);
        if (!tasks) {
          if (midas::is_transient(tasks.error())) {
            backend_unavailable(res, tasks.error(), "try again.");
            return;
          }
          throw bad_request("Cannot list tasks: " + tasks.error().message());
        }
        json out = json::array();
        for (const auto& t : tasks.value()) out.push_back(task_view(t));
        write_json(res, 200, {{"tasks", std::move(out)}});
      }));
}

}  // namespace

void install_join_routes(httplib::Server& server, Services& s, ServerMode mode) {
  install_task_routes(server, s);
  if (mode == ServerMode::worker) return;

  const auto label = [&s](const httplib::Request& req) { return slug_label(s, req); };

  // POST /{slug}/join and /{slug}/register: store the join, answer once it is stored.
  for (const char* endpoint : {"join", "register"}) {
    server.Post(
        std::string(R"(/([^/]+)/)") + endpoint,
        guarded(
            s, endpoint,
            [&s](const httplib::Request& req, httplib::Response& res) {
              const std::string slug = req.matches[1].str();
              const json body = parse_object(req.body);
              AttemptJoinParams p;
              p.scheme_account_id = int_field(body, "scheme_account_id");
              p.user_set = std::to_string(int_field(body, "user_id"));
              p.channel = text_field(body, "channel", 200);
              p.credentials = crypto::spaces_to_plus(text_field(body, "credentials", 64 * 1024));
              const AgentInfo* info = s.agents.find(slug);
              if (!info) throw no_such_agent();
              p.scheme_slug = info->slug;
              // Refuse now what the task could never use, rather than fail it later.
              if (auto c = crypto::decrypt_credentials(p.credentials, s.config.aes_key); !c) {
                throw bad_request("Cannot decrypt credentials: " + c.error().message);
              }
              std::string tid = req.get_header_value("X-Azure-Ref");
              if (tid.empty() || !crypto::is_valid_utf8(tid) || tid.size() > 200) {
                tid = new_transaction_id();
              }
              p.tid = tid;
              auto enqueued = s.joins->enqueue_join(p);
              if (!enqueued) {
                s.log.error("join not stored", {{"slug", p.scheme_slug},
                                                {"scheme_account_id", p.scheme_account_id},
                                                {"error", enqueued.error().message()},
                                                {"transaction", tid}});
                backend_unavailable(res, enqueued.error(),
                                    "the join was not stored: send it again.");
                return;
              }
              const auto& e = enqueued.value();
              s.log.info(e.duplicate ? "join already in flight" : "join stored",
                         {{"task", e.id},
                          {"slug", p.scheme_slug},
                          {"scheme_account_id", p.scheme_account_id},
                          {"transaction", tid}});
              res.set_header("Location", "/tasks/" + e.id);
              res.set_header("X-Task-Id", e.id);
              write_json(res, 200, {{"message", "success"}});
            },
            label));
  }

  // POST /join/merchant/{slug}: the merchant's asynchronous join result.
  server.Post(
      R"(/join/merchant/([^/]+))",
      guarded(
          s, "join_callback",
          [&s](const httplib::Request& req, httplib::Response& res) {
            const AgentInfo* info = s.agents.find(req.matches[1].str());
            if (!info) throw no_such_agent();
            const MerchantConfig* merchant = info->context.merchant;
            if (merchant == nullptr) {
              throw AgentError(errors::configuration, "No merchant configuration for " +
                                                          info->slug + " (MERCHANT_CONFIG).");
            }
            if (merchant->security_type == "rsa") {
              const std::string auth = req.get_header_value("Authorization");
              constexpr std::string_view kScheme = "Signature ";
              if (!auth.starts_with(kScheme)) {
                throw RequestError(401, "Missing \"Authorization: Signature <base64>\" header.");
              }
              const auto stamp = parse_int64(req.get_header_value("X-REQ-TIMESTAMP"));
              if (!stamp) throw RequestError(401, "Missing or invalid X-REQ-TIMESTAMP header.");
              const std::int64_t ts = *stamp;
              const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count();
              if (std::llabs(now - ts) > s.config.callback_max_age_seconds) {
                throw RequestError(401, "The callback's timestamp is " + std::to_string(now - ts) +
                                            " s off; more than " +
                                            std::to_string(s.config.callback_max_age_seconds) +
                                            " s is refused.");
              }
              const auto check =
                  crypto::verify_signature(merchant->public_key_pem, req.body, ts,
                                           std::string_view(auth).substr(kScheme.size()));
              if (!check.valid) {
                s.log.warning("merchant callback refused: bad signature",
                              {{"slug", info->slug}, {"reason", check.reason}});
                throw RequestError(401, "The callback's signature is not valid.");
              }
            }
            json body = json::parse(req.body, nullptr, false);
            if (body.is_discarded() || !body.is_object()) {
              throw AgentError(errors::unknown, "The callback body is not a JSON object.");
            }
            const auto record_uid = credential_text(body, "record_uid");
            const auto id = record_uid ? crypto::decode_record_uid(*record_uid) : std::nullopt;
            if (!id)
              throw AgentError(errors::unknown, "The callback's record_uid cannot be decoded.");
            auto enqueued = s.joins->enqueue_callback(
                {.scheme_slug = info->slug, .scheme_account_id = *id, .body = body});
            if (!enqueued) {
              backend_unavailable(res, enqueued.error(),
                                  "the callback was not stored: send it again.");
              return;
            }
            s.log.info("join callback stored", {{"task", enqueued.value().id},
                                                {"slug", info->slug},
                                                {"scheme_account_id", *id},
                                                {"duplicate", enqueued.value().duplicate}});
            write_json(res, 200, {{"success", true}});
          },
          label));
}

}  // namespace midas_api
