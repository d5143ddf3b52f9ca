// SPDX-License-Identifier: MIT
#pragma once
/// How the conformance suite gets queues: one factory per backend, linked into that backend's
/// conformance program together with the shared cases.

#include <memory>
#include <string>

#include "midas/clock.hpp"
#include "midas/queue.hpp"
#include "midas/result.hpp"

namespace midas::testing {

/// A backend under test.
///
/// One instance per process (see `backend()`); the cases call `make()` once or more per case.
class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  /// "memory", "postgres", "redis".
  [[nodiscard]] virtual std::string name() const = 0;
  /// Why this backend cannot run here (e.g. "MIDAS_TEST_PG_URL is not set"); empty when it can.
  /// Called once, during static initialisation, to decide `doctest::skip`: it must be cheap and
  /// must not touch the network (check configuration only).
  [[nodiscard]] virtual std::string unavailable_reason() const { return {}; }
  /// A fresh, empty queue, isolated from every other queue this backend made (memory: a new
  /// queue; Redis: a unique key prefix; Postgres: a unique schema) that reads time from `clock`.
  /// `clock` outlives the queue. The backend cleans up what it created, at the latest in its
  /// destructor.
  [[nodiscard]] virtual result<std::unique_ptr<Queue>> make(const Clock& clock) = 0;
};

/// Defined once per conformance program, by the backend's factory file.
[[nodiscard]] std::unique_ptr<Backend> make_backend();

/// The process-wide backend under test, made on first use.
[[nodiscard]] Backend& backend();

/// True when the backend cannot run here; the cases pass it to `doctest::skip`, so doctest
/// reports them as skipped (not passed). Prints the reason once.
[[nodiscard]] bool backend_unavailable();

}  // namespace midas::testing
