// SPDX-License-Identifier: MIT
// What the Redis backend reads from the server: the input is fed to hiredis's reply parser (as if
// it came off the socket), and every reply it yields goes through midas's reply readers, above
// all a task hash (HGETALL) back into a Task. A reply must give a value or an error, never crash.
#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "redis/replies.hpp"

namespace {

void read_reply(const redisReply& r) {
  (void)midas::detail::check(r);
  (void)midas::detail::integer_reply(r);
  (void)midas::detail::string_of(r);
  if (auto a = midas::detail::array_reply(r)) {
    for (std::size_t i = 0; i < r.elements; ++i) (void)midas::detail::string_of(*r.element[i]);
  }
  if (midas::detail::is_member_reply(r)) {
    if (auto task = midas::detail::parse_claimed_member(r, "q")) {
      (void)nlohmann::json(task.value())
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  std::string token;
  (void)midas::detail::parse_task(r, "q");  // the hash must carry its seq
  auto task = midas::detail::parse_task(r, "q", "1", &token);
  if (task) {
    // What the backend does next with a task it read: hand it out as JSON.
    const nlohmann::json j = task.value();
    (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

// hiredis 0.14 allocates an array reply's element table as soon as it reads the count, with no
// upper bound ("*900000000\r\n" asks for gigabytes; hiredis 1.x added `maxelements`). The
// server is a trusted peer, so inputs declaring more than 65536 elements are skipped rather than
// reported as the client running out of memory. Any '*' counts, not only one at a line start:
// after a bulk string whose CRLF is missing, hiredis reads its next type byte mid-line.
bool declares_huge_array(std::string_view in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '*') continue;
    std::size_t digits = 0;
    long long n = 0;
    for (std::size_t j = i + 1; j < in.size() && in[j] >= '0' && in[j] <= '9'; ++j, ++digits) {
      if (digits > 6) return true;
      n = n * 10 + (in[j] - '0');
    }
    if (n > 65536) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (declares_huge_array({reinterpret_cast<const char*>(data), size})) return 0;
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return 0;
  if (redisReaderFeed(reader, reinterpret_cast<const char*>(data), size) == REDIS_OK) {
    void* reply = nullptr;
    while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr) {
      read_reply(*static_cast<const redisReply*>(reply));
      freeReplyObject(reply);
      reply = nullptr;
    }
  }
  redisReaderFree(reader);
  return 0;
}
