// SPDX-License-Identifier: MIT
// The Postgres backend's conformance factory: every queue gets a schema of its own, dropped when
// the program ends. Needs MIDAS_TEST_PG_URL (scripts/services start sets it).
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <vector>

#include "factory.hpp"
#include "midas/postgres.hpp"

namespace midas::testing {
namespace {

std::string test_url() {
  const char* url = std::getenv("MIDAS_TEST_PG_URL");
  return url ? url : "";
}

class PostgresBackend final : public Backend {
 public:
  ~PostgresBackend() override {
    if (schemas_.empty()) return;
    PGconn* conn = PQconnectdb(test_url().c_str());
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    if (PQstatus(conn) == CONNECTION_OK) {
      for (const auto& s : schemas_) {
        PQclear(PQexec(conn, ("DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE").c_str()));
      }
    }
    PQfinish(conn);
  }

  [[nodiscard]] std::string name() const override { return "postgres"; }

  [[nodiscard]] std::string unavailable_reason() const override {
    return test_url().empty() ? "MIDAS_TEST_PG_URL is not set (scripts/services start sets it)"
                              : "";
  }

  [[nodiscard]] result<std::unique_ptr<Queue>> make(const Clock& clock) override {
    std::string schema =
        "midas_conf_" + std::to_string(std::random_device{}()) + "_" + std::to_string(++made_);
    {
      std::lock_guard lock{mutex_};
      schemas_.push_back(schema);
    }
    // slow_claim = 0: after any claim that comes up short, the queue's next claims visit only
    // due tasks (claim_sparse_), so every case checks that statement as well as the plain one
    // (used for a queue's first claim and whenever a claim comes back full).
    return connect_postgres(
        test_url(), {.schema = schema, .pool_size = 4, .slow_claim = Duration{0}, .log = {}},
        {.clock = &clock});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> schemas_;
  std::atomic<int> made_{0};
};

}  // namespace

std::unique_ptr<Backend> make_backend() { return std::make_unique<PostgresBackend>(); }

}  // namespace midas::testing
