// SPDX-License-Identifier: MIT
#pragma once

#include <memory>

#include "agents/agent.hpp"
#include "config.hpp"
#include "crypto/reference_data.hpp"
#include "logging.hpp"

namespace midas_api {

/** Registers every agent midas-api ships: the mock agents (data from `data`) and the HTTP agent
 *  `iceland-bonus-card` with its MERCHANT_CONFIG entry (none: it answers 536). `config` must
 *  outlive the registry (agents keep pointers to its merchant entries). */
void register_builtin_agents(AgentRegistry& registry,
                             std::shared_ptr<const data::ReferenceData> data, const Config& config,
                             const Logger& log);

}  // namespace midas_api
