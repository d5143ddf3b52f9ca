// SPDX-License-Identifier: MIT
#include "agents/builtin.hpp"

#include "agents/iceland_bonus_card.hpp"
#include "agents/mock_agents.hpp"

namespace midas_api {

void register_builtin_agents(AgentRegistry& registry,
                             std::shared_ptr<const data::ReferenceData> data, const Config& config,
                             const Logger& log) {
  register_mock_agents(registry, std::move(data),
                       MockOptions{.slow_user_delay = config.mock_slow_user_delay});
  AgentContext context;
  context.slug = std::string(kIcelandBonusCardSlug);
  if (auto it = config.merchants.find(kIcelandBonusCardSlug); it != config.merchants.end()) {
    context.merchant = &it->second;
    context.http = http_settings_of(it->second);
  } else {
    log.warning(
        "no MERCHANT_CONFIG entry for iceland-bonus-card: it answers 536 Configuration error");
  }
  context.log = [&log](std::string_view level, std::string_view message) {
    log.log(parse_level(level).value_or(Level::info), message,
            {{"agent", std::string(kIcelandBonusCardSlug)}});
  };
  register_iceland_bonus_card(registry, std::move(context));
  for (const auto& [slug, merchant] : config.merchants) {
    if (!registry.find(slug)) {
      log.warning("MERCHANT_CONFIG names a slug no agent serves", {{"slug", slug}});
    }
  }
}

}  // namespace midas_api
