// SPDX-License-Identifier: MIT
// Any text given to midas::connect is parsed by detail::parse_url first: it must come back as a
// URL or an error, never crash, and a parsed URL must hold only what the text said.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  auto url = midas::detail::parse_url(text);
  if (url) {
    // Whatever was parsed is made of the input's bytes: nothing longer than the input.
    const auto& u = url.value();
    if (u.host.size() > size || u.scheme.size() > size) __builtin_trap();
  }
  return 0;
}
