// SPDX-License-Identifier: MIT
// The memory backend's conformance factory: always available, a new queue per case.
#include "factory.hpp"

namespace midas::testing {
namespace {

class MemoryBackend final : public Backend {
 public:
  [[nodiscard]] std::string name() const override { return "memory"; }
  [[nodiscard]] result<std::unique_ptr<Queue>> make(const Clock& clock) override {
    return connect("memory://", {.clock = &clock});
  }
};

}  // namespace

std::unique_ptr<Backend> make_backend() { return std::make_unique<MemoryBackend>(); }

}  // namespace midas::testing
