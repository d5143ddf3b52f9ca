// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <string_view>

#include "crypto/expected.hpp"

namespace midas_api::crypto {

/// Standard base64 (RFC 4648 section 4: `A-Z a-z 0-9 + /`, `=` padding) of any bytes.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

/** Strict standard base64 decoding: the length must be a multiple of 4, `=` may only end the
 *  input (at most two), and every other character must be in the alphabet. Whitespace and
 *  URL-safe characters (`-`, `_`) are rejected (ErrorKind::bad_base64, the message gives the
 *  offending position); a space gets a hint that it was probably a `+` mangled by URL decoding,
 *  see `spaces_to_plus`. An empty input is ErrorKind::empty_input. */
[[nodiscard]] Expected<std::string> base64_decode(std::string_view text);

/** `text` with every ' ' replaced by '+'. The original service did this to the `credentials`
 *  query parameter before decoding, because form decoding turns an unescaped '+' into a space.
 *  The HTTP layer calls it on query-string credentials; `decrypt_credentials` itself does not. */
[[nodiscard]] std::string spaces_to_plus(std::string_view text);

}  // namespace midas_api::crypto
