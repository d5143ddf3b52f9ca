// SPDX-License-Identifier: MIT
// midasctl: operate a midas queue from the shell. The command-line contract and the JSON field
// names are documented in docs/operations.md and kept stable.
#include <CLI/CLI.hpp>
#include <iostream>
#include <midas/midas.hpp>
#include <set>
#include <sstream>

#include "tool_support.hpp"

namespace {

using midas::tools::exit_failure;
using midas::tools::exit_ok;
using midas::tools::exit_usage;
using nlohmann::json;

constexpr std::size_t page_size = 1000;

struct Globals {
  std::string url;
  bool json = false;
  bool verbose = false;
};

// Reports an error: a sentence on stderr and, with --json, {"error": {...}} on stdout.
int report_error(const Globals& g, const std::string& code, const std::string& message,
                 int status) {
  std::cerr << "midasctl: error: " << message << "\n";
  if (g.json) {
    std::cout
        << json{{"error", {{"code", code}, {"message", message}, {"exit_code", status}}}}.dump()
        << "\n";
  }
  return status;
}

int usage_error(const Globals& g, const std::string& message) {
  return report_error(g, "usage", message, exit_usage);
}

int operation_error(const Globals& g, std::error_code ec, const std::string& message) {
  return report_error(g, midas::tools::error_name(ec), message, exit_failure);
}

// A message for a failed backend call, naming what was being done and what to do about it.
std::string explain(const Globals& g, std::string_view doing, std::error_code ec) {
  std::string msg = std::string{doing} + ": " + ec.message();
  if (ec == midas::errc::backend_unavailable || ec == midas::errc::timeout) {
    msg += " — the " + midas::tools::backend_name(g.url) + " server at " +
           midas::tools::endpoint_of(g.url) + " stopped answering; is it running? check --url";
  }
  return msg;
}

json time_json(const std::optional<midas::TimePoint>& t) {
  return t ? json(midas::format_time(*t)) : json();
}

// The fields of `list` rows (docs/operations.md, "list").
json task_summary(const midas::Task& t) {
  return json{{"id", t.id},
              {"type", t.type},
              {"queue", t.queue},
              {"status", std::string{midas::to_string(t.status)}},
              {"attempt", t.attempt},
              {"max_attempts", t.max_attempts},
              {"priority", t.priority},
              {"run_at", midas::format_time(t.run_at)},
              {"created_at", midas::format_time(t.created_at)},
              {"updated_at", midas::format_time(t.updated_at)},
              {"finished_at", time_json(t.finished_at)},
              {"unique_key", t.unique_key ? json(*t.unique_key) : json()}};
}

// Opens the queue; on failure reports it and returns the exit status to use.
std::optional<int> open(const Globals& g, midas::tools::Connection& conn) {
  if (g.url.empty()) {
    return usage_error(g,
                       "no backend URL — pass --url URL or set MIDAS_URL (postgresql://user@host:"
                       "5432/db, redis://host:6379/0 or memory://)");
  }
  if (auto failed = midas::tools::connect_queue(g.url, g.verbose, conn)) {
    const bool usage =
        failed->code == midas::errc::invalid_url || failed->code == midas::errc::unsupported_scheme;
    return report_error(g, midas::tools::error_name(failed->code), failed->message,
                        usage ? exit_usage : exit_failure);
  }
  return std::nullopt;
}

void memory_note(const Globals& g) {
  if (midas::tools::backend_name(g.url) == "memory") {
    std::cerr << "midasctl: note: memory:// lives in this process only; what this command did is "
                 "gone when it exits\n";
  }
}

// --- migrate ------------------------------------------------------------------------------------

int cmd_migrate(const Globals& g) {
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  if (auto r = conn.queue->migrate(); !r) {
    return operation_error(g, r.error(), explain(g, "migrate", r.error()));
  }
  const std::string backend = midas::tools::backend_name(g.url);
  if (g.json) {
    std::cout << json{{"migrated", true}, {"backend", backend}}.dump() << "\n";
  } else if (backend == "memory") {
    std::cout << "nothing to migrate: memory:// has no schema\n";
  } else {
    std::cout << backend << " schema is up to date\n";
  }
  return exit_ok;
}

// --- enqueue ------------------------------------------------------------------------------------

struct EnqueueArgs {
  std::string type;
  std::string params = "{}";
  std::string queue = "default";
  int priority = 0;
  std::string delay;
  std::string unique_key;
  int max_attempts = 0;
};

int cmd_enqueue(const Globals& g, const EnqueueArgs& a) {
  // Everything is checked before connecting, so a bad argument never enqueues anything.
  if (!midas::is_valid_name(a.type)) {
    return usage_error(
        g, "invalid task type '" + a.type + "' — use 1 to 128 characters of A-Z a-z 0-9 _ . : -");
  }
  if (!midas::is_valid_name(a.queue)) {
    return usage_error(
        g, "invalid queue name '" + a.queue + "' — use 1 to 128 characters of A-Z a-z 0-9 _ . : -");
  }
  json params = json::parse(a.params, nullptr, /*allow_exceptions=*/false);
  if (params.is_discarded()) {
    std::string where;
    try {
      json ignored = json::parse(a.params);
      (void)ignored;
    } catch (const json::parse_error& e) {
      where = std::string{" ("} + e.what() + ")";
    }
    return usage_error(g, "--params is not valid JSON" + where +
                              "; nothing was enqueued — quote it for the shell, e.g. --params "
                              "'{\"user\": 42}'");
  }
  if (a.max_attempts < 0) {
    return usage_error(g, "--max-attempts must be at least 1 (0 means the default, 20)");
  }
  midas::TaskSpec spec{.type = a.type,
                       .params = std::move(params),
                       .queue = a.queue,
                       .priority = a.priority,
                       .run_at = std::nullopt,
                       .delay = midas::Duration{0},
                       .unique_key = std::nullopt,
                       .max_attempts = a.max_attempts};
  if (!a.delay.empty()) {
    std::string why;
    auto d = midas::tools::parse_duration(a.delay, why);
    if (!d) return usage_error(g, "--delay: " + why);
    spec.delay = *d;
  }
  if (!a.unique_key.empty()) spec.unique_key = a.unique_key;
  if (auto valid = midas::validate(spec); !valid) {
    return usage_error(g, "the task is not valid: " + valid.error().message());
  }

  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  auto r = conn.queue->enqueue(spec);
  if (!r) return operation_error(g, r.error(), explain(g, "enqueue", r.error()));
  const auto& e = r.value();
  if (g.json) {
    std::cout << json{{"id", e.id},
                      {"duplicate", e.duplicate},
                      {"type", spec.type},
                      {"queue", spec.queue}}
                     .dump()
              << "\n";
  } else if (e.duplicate) {
    std::cout << "not enqueued: task " << e.id << " already holds unique key '" << a.unique_key
              << "' in queue " << spec.queue << "\n";
  } else {
    std::cout << "enqueued task " << e.id << " (type " << spec.type << ", queue " << spec.queue
              << ")\n";
  }
  memory_note(g);
  return exit_ok;
}

// --- stats --------------------------------------------------------------------------------------

int cmd_stats(const Globals& g, const std::string& queue) {
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  std::optional<std::string> filter;
  if (!queue.empty()) filter = queue;
  auto r = conn.queue->stats(filter);
  if (!r) return operation_error(g, r.error(), explain(g, "stats", r.error()));
  const midas::Stats& s = r.value();

  std::size_t totals[6] = {0, 0, 0, 0, 0, 0};
  std::optional<midas::Duration> oldest;
  json queues = json::array();
  for (const auto& q : s.queues) {
    const std::size_t counts[6] = {q.pending,   q.running, q.retrying,
                                   q.succeeded, q.failed,  q.cancelled};
    std::size_t total = 0;
    for (int i = 0; i < 6; ++i) {
      totals[i] += counts[i];
      total += counts[i];
    }
    if (q.oldest_due_age && (!oldest || *q.oldest_due_age > *oldest)) oldest = q.oldest_due_age;
    queues.push_back(
        {{"queue", q.queue},
         {"pending", q.pending},
         {"running", q.running},
         {"retrying", q.retrying},
         {"succeeded", q.succeeded},
         {"failed", q.failed},
         {"cancelled", q.cancelled},
         {"total", total},
         {"oldest_due_age_ms", q.oldest_due_age ? json(q.oldest_due_age->count()) : json()}});
  }
  const char* names[6] = {"pending", "running", "retrying", "succeeded", "failed", "cancelled"};
  if (g.json) {
    json t = json::object();
    std::size_t all = 0;
    for (int i = 0; i < 6; ++i) {
      t[names[i]] = totals[i];
      all += totals[i];
    }
    t["total"] = all;
    std::cout << json{{"backend", midas::tools::backend_name(g.url)},
                      {"queues", queues},
                      {"totals", t},
                      {"running", totals[1]},
                      {"oldest_due_age_ms", oldest ? json(oldest->count()) : json()},
                      {"durability_warnings", s.durability_warnings}}
                     .dump()
              << "\n";
    return exit_ok;
  }
  midas::tools::Table table{{"QUEUE", "PENDING", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED",
                             "CANCELLED", "OLDEST DUE"}};
  for (std::size_t i = 1; i < 8; ++i) table.right(i);
  for (const auto& q : s.queues) {
    table.add({q.queue, std::to_string(q.pending), std::to_string(q.running),
               std::to_string(q.retrying), std::to_string(q.succeeded), std::to_string(q.failed),
               std::to_string(q.cancelled),
               q.oldest_due_age ? midas::tools::format_duration(*q.oldest_due_age) : "-"});
  }
  if (s.queues.size() > 1) {
    std::vector<std::string> row{"(all)"};
    for (auto v : totals) row.push_back(std::to_string(v));
    row.push_back(oldest ? midas::tools::format_duration(*oldest) : "-");
    table.add(std::move(row));
  }
  if (s.queues.empty()) {
    std::cout << (queue.empty() ? "no tasks\n" : "no tasks in queue " + queue + "\n");
  } else {
    table.print(std::cout);
  }
  std::cout << "\nrunning now: " << totals[1] << "; oldest due task waiting: "
            << (oldest ? midas::tools::format_duration(*oldest) : std::string{"none"}) << "\n";
  if (s.durability_warnings.empty()) {
    if (midas::tools::backend_name(g.url) == "memory") {
      std::cout << "durability: none — memory:// lives in one process and is lost when it exits\n";
    } else {
      std::cout << "durability: ok\n";
    }
  } else {
    std::cout << "durability warnings:\n";
    for (const auto& w : s.durability_warnings) std::cout << "  - " << w << "\n";
  }
  return exit_ok;
}

// --- list ---------------------------------------------------------------------------------------

struct ListArgs {
  std::string queue;
  std::string status;
  std::string type;
  std::size_t limit = 50;
  std::size_t offset = 0;
};

std::optional<int> make_filter(const Globals& g, const ListArgs& a, midas::ListFilter& f) {
  if (!a.queue.empty()) f.queue = a.queue;
  if (!a.type.empty()) f.type = a.type;
  if (!a.status.empty()) {
    auto s = midas::parse_task_status(a.status);
    if (!s) {
      return usage_error(g, "unknown status '" + a.status +
                                "' — use pending, running, retrying, succeeded, failed or "
                                "cancelled");
    }
    f.status = s.value();
  }
  f.limit = a.limit;
  f.offset = a.offset;
  return std::nullopt;
}

int cmd_list(const Globals& g, const ListArgs& a) {
  midas::ListFilter filter;
  if (auto rc = make_filter(g, a, filter)) return *rc;
  if (a.limit == 0) return usage_error(g, "--limit must be at least 1");
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  auto r = conn.queue->list(filter);
  if (!r) return operation_error(g, r.error(), explain(g, "list", r.error()));
  if (g.json) {
    json tasks = json::array();
    for (const auto& t : r.value()) tasks.push_back(task_summary(t));
    std::cout << json{{"count", r.value().size()}, {"tasks", tasks}}.dump() << "\n";
    return exit_ok;
  }
  if (r.value().empty()) {
    std::cout << "no matching tasks\n";
    return exit_ok;
  }
  midas::tools::Table table{
      {"ID", "TYPE", "QUEUE", "STATUS", "ATTEMPT", "PRIORITY", "RUN AT", "UPDATED AT"}};
  table.right(4).right(5);
  for (const auto& t : r.value()) {
    table.add({t.id, t.type, t.queue, std::string{midas::to_string(t.status)},
               std::to_string(t.attempt) + "/" + std::to_string(t.max_attempts),
               std::to_string(t.priority), midas::format_time(t.run_at),
               midas::format_time(t.updated_at)});
  }
  table.print(std::cout);
  if (r.value().size() == a.limit) {
    std::cout << "(showing " << a.limit << "; more with --offset " << a.offset + a.limit
              << " or a larger --limit)\n";
  }
  return exit_ok;
}

// --- show ---------------------------------------------------------------------------------------

std::string not_found(const std::string& id) {
  return "no task with id '" + id + "' — it may have been pruned; find ids with `midasctl list`";
}

int cmd_show(const Globals& g, const std::string& id) {
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  auto r = conn.queue->get(id);
  if (!r) {
    if (r.error() == midas::errc::task_not_found)
      return operation_error(g, r.error(), not_found(id));
    return operation_error(g, r.error(), explain(g, "show " + id, r.error()));
  }
  const midas::Task& t = r.value();
  if (g.json) {
    std::cout << json{{"task", t}}.dump() << "\n";
    return exit_ok;
  }
  auto opt_time = [](const std::optional<midas::TimePoint>& tp) {
    return tp ? midas::format_time(*tp) : std::string{"-"};
  };
  std::cout << "id:           " << t.id << "\n"
            << "type:         " << t.type << "\n"
            << "queue:        " << t.queue << "\n"
            << "status:       " << midas::to_string(t.status) << "\n"
            << "attempt:      " << t.attempt << " of " << t.max_attempts << "\n"
            << "priority:     " << t.priority << "\n"
            << "unique key:   " << (t.unique_key ? *t.unique_key : std::string{"-"}) << "\n"
            << "run at:       " << midas::format_time(t.run_at) << "\n"
            << "created at:   " << midas::format_time(t.created_at) << "\n"
            << "updated at:   " << midas::format_time(t.updated_at) << "\n"
            << "finished at:  " << opt_time(t.finished_at) << "\n";
  if (t.lease_owner) {
    std::cout << "lease:        " << *t.lease_owner << " until " << opt_time(t.lease_expires_at)
              << "\n";
  }
  std::cout << "params:       " << t.params.dump() << "\n";
  if (!t.checkpoint.is_null()) std::cout << "checkpoint:   " << t.checkpoint.dump() << "\n";
  std::cout << "\nhistory (" << t.history.size() << " attempt record"
            << (t.history.size() == 1 ? "" : "s") << "):\n";
  if (t.history.empty()) {
    std::cout << "  none yet\n";
    return exit_ok;
  }
  midas::tools::Table table{
      {"#", "STARTED", "FINISHED", "WORKER", "DECISION", "NEXT RUN", "ERROR"}};
  table.right(0);
  for (const auto& h : t.history) {
    std::string error = "-";
    if (h.error) {
      error = h.error->type + ": " + h.error->message;
      if (h.error->http_status) error += " (HTTP " + std::to_string(*h.error->http_status) + ")";
    }
    table.add({std::to_string(h.attempt), midas::format_time(h.started_at),
               midas::format_time(h.finished_at), h.worker_id, h.decision, opt_time(h.next_run_at),
               error});
  }
  table.print(std::cout);
  return exit_ok;
}

// --- cancel -------------------------------------------------------------------------------------

int cmd_cancel(const Globals& g, const std::string& id) {
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  auto r = conn.queue->cancel(id);
  if (!r) {
    if (r.error() == midas::errc::task_not_found)
      return operation_error(g, r.error(), not_found(id));
    if (r.error() == midas::errc::invalid_state) {
      std::string status = "not cancellable";
      if (auto t = conn.queue->get(id)) status = std::string{midas::to_string(t.value().status)};
      return operation_error(
          g, r.error(),
          "task " + id + " is " + status + ": only pending or retrying tasks can be cancelled" +
              (status == "running" ? " — wait for the attempt to end, or let the handler cancel"
                                   : " — it has finished already"));
    }
    return operation_error(g, r.error(), explain(g, "cancel " + id, r.error()));
  }
  if (g.json) {
    std::cout << json{{"id", id}, {"status", "cancelled"}}.dump() << "\n";
  } else {
    std::cout << "cancelled task " << id << "\n";
  }
  return exit_ok;
}

// --- requeue ------------------------------------------------------------------------------------

struct RequeueArgs {
  std::string id;
  std::string status;
  std::string queue;
  std::string type;
};

std::string requeue_problem(midas::Queue& q, const std::string& id, std::error_code ec) {
  if (ec == midas::errc::task_not_found) return not_found(id);
  if (ec == midas::errc::invalid_state) {
    std::string status = "in a status that cannot be requeued";
    if (auto t = q.get(id)) status = std::string{midas::to_string(t.value().status)};
    return "task " + id + " is " + status + ": only failed or cancelled tasks can be requeued";
  }
  if (ec == midas::errc::duplicate_task) {
    return "task " + id +
           " was not requeued: another unfinished task of its queue holds its unique key — let "
           "that one finish, or cancel it";
  }
  return "requeue " + id + ": " + ec.message();
}

int cmd_requeue(const Globals& g, const RequeueArgs& a) {
  if (a.id.empty() == a.status.empty()) {
    return usage_error(g,
                       "requeue needs a task ID, or --status failed (or cancelled) to requeue "
                       "every such task — give exactly one");
  }
  if (!a.id.empty() && (!a.queue.empty() || !a.type.empty())) {
    return usage_error(g, "--queue and --type go with --status, not with a task ID");
  }
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  midas::Queue& q = *conn.queue;

  if (!a.id.empty()) {
    auto r = q.requeue(a.id);
    if (!r) {
      if (r.error() == midas::errc::backend_unavailable || r.error() == midas::errc::timeout) {
        return operation_error(g, r.error(), explain(g, "requeue " + a.id, r.error()));
      }
      return operation_error(g, r.error(), requeue_problem(q, a.id, r.error()));
    }
    if (g.json) {
      std::cout << json{{"requeued", 1},
                        {"failed", 0},
                        {"ids", json::array({a.id})},
                        {"errors", json::array()}}
                       .dump()
                << "\n";
    } else {
      std::cout << "requeued task " << a.id << "\n";
    }
    return exit_ok;
  }

  // Every task in the status: collect the ids page by page first (requeuing changes the set
  // being paged through), then requeue them one by one.
  midas::ListFilter filter;
  auto status = midas::parse_task_status(a.status);
  filter.status = status.value();  // CLI11 already checked it is failed or cancelled
  if (!a.queue.empty()) filter.queue = a.queue;
  if (!a.type.empty()) filter.type = a.type;
  filter.limit = page_size;
  std::vector<std::string> ids;
  std::set<std::string> seen;
  {
    midas::tools::Progress progress{"finding " + a.status + " tasks", std::nullopt};
    for (;;) {
      filter.offset = ids.size();
      auto page = q.list(filter);
      if (!page) return operation_error(g, page.error(), explain(g, "list", page.error()));
      std::size_t added = 0;
      for (const auto& t : page.value()) {
        if (seen.insert(t.id).second) {
          ids.push_back(t.id);
          ++added;
        }
      }
      progress.update(ids.size());
      if (page.value().size() < page_size || added == 0) break;
    }
  }
  std::size_t requeued = 0;
  json errors = json::array();
  std::size_t failures = 0;
  {
    midas::tools::Progress progress{"requeued", ids.size()};
    for (const auto& id : ids) {
      auto r = q.requeue(id);
      if (r) {
        ++requeued;
      } else {
        if (r.error() == midas::errc::backend_unavailable) {
          progress.finish();
          return operation_error(g, r.error(),
                                 explain(g,
                                         "requeue (after " + std::to_string(requeued) + " of " +
                                             std::to_string(ids.size()) + " tasks)",
                                         r.error()));
        }
        ++failures;
        if (errors.size() < 100) {
          errors.push_back({{"id", id},
                            {"code", midas::tools::error_name(r.error())},
                            {"message", requeue_problem(q, id, r.error())}});
        }
      }
      progress.update(requeued + failures);
    }
  }
  if (g.json) {
    std::cout << json{{"requeued", requeued},
                      {"failed", failures},
                      {"ids", ids},
                      {"errors", errors}}
                     .dump()
              << "\n";
  } else {
    std::cout << "requeued " << requeued << " " << a.status << " task"
              << (requeued == 1 ? "" : "s");
    if (!a.queue.empty()) std::cout << " in queue " << a.queue;
    std::cout << "\n";
    for (const auto& e : errors) {
      std::cout << "  not requeued: " << e["message"].get<std::string>() << "\n";
    }
    if (failures > errors.size()) {
      std::cout << "  ... and " << failures - errors.size() << " more\n";
    }
  }
  return failures == 0 ? exit_ok : exit_failure;
}

// --- prune --------------------------------------------------------------------------------------

int cmd_prune(const Globals& g, const std::string& older_than) {
  std::string why;
  auto age = midas::tools::parse_duration(older_than, why);
  if (!age) return usage_error(g, "--older-than: " + why);
  midas::tools::Connection conn;
  if (auto rc = open(g, conn)) return *rc;
  midas::Queue& q = *conn.queue;
  const midas::TimePoint cutoff = q.clock().now() - *age;
  std::size_t pruned = 0;
  {
    midas::tools::Progress progress{"pruned", std::nullopt};
    for (;;) {
      auto r = q.prune(cutoff, page_size);
      if (!r) {
        progress.finish();
        return operation_error(
            g, r.error(),
            explain(g, "prune (after " + std::to_string(pruned) + " tasks)", r.error()));
      }
      pruned += r.value();
      progress.update(pruned);
      if (r.value() < page_size) break;
    }
  }
  if (g.json) {
    std::cout << json{{"pruned", pruned}, {"cutoff", midas::format_time(cutoff)}}.dump() << "\n";
  } else {
    std::cout << "pruned " << pruned << " finished task" << (pruned == 1 ? "" : "s")
              << " that finished before " << midas::format_time(cutoff) << "\n";
  }
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  Globals g;
  CLI::App app{
      "midasctl: operate a midas task queue (enqueue, inspect, cancel, requeue, prune).\n"
      "Exit status: 0 done, 1 the operation failed, 2 the command line is wrong.",
      "midasctl"};
  app.footer(
      "Backend URLs: postgresql://user:pass@host:5432/db?schema=midas, redis://host:6379/0, "
      "memory://.\nmemory:// lives inside one process: with midasctl it is empty at every start "
      "and\nforgotten at exit, so it is only good for trying the commands.\n"
      "JSON field names (--json) are documented in docs/operations.md.");
  app.fallthrough();
  app.require_subcommand(1, 1);
  app.add_option("--url", g.url, "Backend URL (default: $MIDAS_URL)")->envname("MIDAS_URL");
  app.add_flag("--json", g.json, "Print exactly one JSON object on stdout");
  app.add_flag("-v,--verbose", g.verbose, "Also print what the backend logs");

  auto* migrate = app.add_subcommand("migrate", "Create or upgrade the backend's schema");

  EnqueueArgs ea;
  auto* enqueue = app.add_subcommand("enqueue", "Enqueue one task");
  enqueue->add_option("type", ea.type, "Task type")->required();
  enqueue->add_option("--params", ea.params, "Params as a JSON document (default {})");
  enqueue->add_option("--queue", ea.queue, "Queue (default: default)");
  enqueue->add_option("--priority", ea.priority, "Priority; lower runs first (default 0)");
  enqueue->add_option("--delay", ea.delay, "Run no earlier than this from now: 30s, 15m, 2h, 7d");
  enqueue->add_option("--unique-key", ea.unique_key,
                      "At most one unfinished task per queue holds this key");
  enqueue->add_option("--max-attempts", ea.max_attempts,
                      "Attempts including the first (default 20)");

  std::string stats_queue;
  auto* stats = app.add_subcommand(
      "stats", "Counts per queue and status, oldest due task, durability warnings");
  stats->add_option("--queue", stats_queue, "Only this queue");

  ListArgs la;
  auto* list = app.add_subcommand("list", "List tasks, newest first");
  list->add_option("--queue", la.queue, "Only this queue");
  list->add_option("--status", la.status,
                   "pending, running, retrying, succeeded, failed or cancelled");
  list->add_option("--type", la.type, "Only this task type");
  list->add_option("--limit", la.limit, "At most this many (default 50)");
  list->add_option("--offset", la.offset, "Skip this many first (default 0)");

  std::string show_id;
  auto* show = app.add_subcommand("show", "One task with its whole attempt history");
  show->add_option("id", show_id, "Task id")->required();

  std::string cancel_id;
  auto* cancel = app.add_subcommand("cancel", "Cancel a pending or retrying task");
  cancel->add_option("id", cancel_id, "Task id")->required();

  RequeueArgs ra;
  auto* requeue = app.add_subcommand(
      "requeue", "Put a failed or cancelled task back to pending (ID, or all with --status)");
  requeue->add_option("id", ra.id, "Task id");
  requeue->add_option("--status", ra.status, "Requeue every task in this status")
      ->check(CLI::IsMember({"failed", "cancelled"}));
  requeue->add_option("--queue", ra.queue, "With --status: only this queue");
  requeue->add_option("--type", ra.type, "With --status: only this task type");

  std::string older_than;
  auto* prune = app.add_subcommand(
      "prune", "Delete finished tasks (succeeded, failed, cancelled) older than a duration");
  prune->add_option("--older-than", older_than, "Age: 30s, 15m, 2h, 7d")->required();

  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string{"midasctl: error: "} + e.what() +
           "\nRun with --help for more information.\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }

  try {
    if (migrate->parsed()) return cmd_migrate(g);
    if (enqueue->parsed()) return cmd_enqueue(g, ea);
    if (stats->parsed()) return cmd_stats(g, stats_queue);
    if (list->parsed()) return cmd_list(g, la);
    if (show->parsed()) return cmd_show(g, show_id);
    if (cancel->parsed()) return cmd_cancel(g, cancel_id);
    if (requeue->parsed()) return cmd_requeue(g, ra);
    if (prune->parsed()) return cmd_prune(g, older_than);
  } catch (const std::exception& e) {
    return report_error(g, "internal", std::string{"unexpected failure: "} + e.what(),
                        exit_failure);
  }
  return usage_error(g, "no command given; see midasctl --help");
}
