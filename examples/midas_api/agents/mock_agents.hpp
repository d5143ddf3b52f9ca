// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <memory>

#include "agents/agent.hpp"
#include "crypto/reference_data.hpp"

/// The in-process mock agents of the original (MockAgentIce, MockAgentHN, MockPerformance).
namespace midas_api {

/// Settings of the mock agents.
struct MockOptions {
  /// Login delay of the "slow" users 999000-999004 (the original slept 60 s).
  std::chrono::milliseconds slow_user_delay{std::chrono::seconds{60}};
};

/** Registers `iceland-bonus-card-mock`, `harvey-nichols-mock` and `performance-mock` (which also
 *  answers any slug starting with "performance-mock"). `data` holds the user store and card
 *  tables; it is shared by every agent and must not change afterwards. */
void register_mock_agents(AgentRegistry& registry, std::shared_ptr<const data::ReferenceData> data,
                          MockOptions options = {});

}  // namespace midas_api
