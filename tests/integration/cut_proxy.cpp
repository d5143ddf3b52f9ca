// SPDX-License-Identifier: MIT
// A TCP proxy that can cut the network, for the fault suite's network_cut scenario: workers
// connect to the server through it, and signals break the path between them.
//
//   midas_test_proxy LISTEN_PORT TARGET_PORT     (both on 127.0.0.1)
//
//   SIGUSR1  cut, reset: every connection is reset (RST to both ends) and new ones are reset as
//            soon as they arrive, as when a router or firewall between them rejects traffic.
//   SIGUSR2  cut, blackhole: nothing is forwarded any more and new connections are accepted but
//            never reach the server, as when packets are dropped: the ends only notice through
//            their own timeouts. At the heal, the connections of the cut are reset (their state
//            is stale on both ends by then).
//   SIGHUP   heal: connections are forwarded again.
//
// Prints one line per event on stdout ("cut reset: N connections reset", "healed: ...").
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const auto c = static_cast<char>(sig);
  const int saved = errno;
  (void)!::write(signal_pipe[1], &c, 1);
  errno = saved;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closes with a TCP reset instead of an orderly FIN: the peer sees "connection reset".
void reset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

struct Pair {
  int client = -1;
  int server = -1;  // -1 while connecting is pending (accepted during a blackhole)
  std::string to_server, to_client;
  bool client_eof = false, server_eof = false;
  bool frozen = false;  // joined or lived through a blackhole: reset at the heal
};

int listen_on(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0) {
    std::fprintf(stderr, "proxy: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    std::exit(1);
  }
  set_nonblocking(fd);
  return fd;
}

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  return fd;
}

// Moves what `from` has to `buffer`; false when `from` is closed or failed.
bool read_into(int from, std::string& buffer) {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(from, chunk, sizeof chunk);
    if (n > 0) {
      buffer.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

bool write_from(int to, std::string& buffer) {
  while (!buffer.empty()) {
    const ssize_t n = ::write(to, buffer.data(), buffer.size());
    if (n > 0) {
      buffer.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: midas_test_proxy LISTEN_PORT TARGET_PORT\n");
    return 2;
  }
  const int listen_port = std::atoi(argv[1]);
  const int target_port = std::atoi(argv[2]);
  if (::pipe(signal_pipe) != 0) return 1;
  set_nonblocking(signal_pipe[0]);
  set_nonblocking(signal_pipe[1]);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGUSR1, SIGUSR2, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  const int listener = listen_on(listen_port);
  std::printf("proxy: 127.0.0.1:%d -> 127.0.0.1:%d\n", listen_port, target_port);
  std::fflush(stdout);

  enum class Mode { forward, reset, blackhole } mode = Mode::forward;
  std::vector<Pair> pairs;
  int refused = 0;
  for (;;) {
    std::vector<pollfd> fds{{signal_pipe[0], POLLIN, 0}, {listener, POLLIN, 0}};
    std::vector<std::pair<std::size_t, bool>> owners;  // (pair, is_client) for fds[2..]
    if (mode != Mode::blackhole) {
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        Pair& p = pairs[i];
        short c =
            static_cast<short>((p.client_eof ? 0 : POLLIN) | (p.to_client.empty() ? 0 : POLLOUT));
        short s =
            static_cast<short>((p.server_eof ? 0 : POLLIN) | (p.to_server.empty() ? 0 : POLLOUT));
        fds.push_back({p.client, c, 0});
        owners.emplace_back(i, true);
        fds.push_back({p.server, s, 0});
        owners.emplace_back(i, false);
      }
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("proxy: poll");
      return 1;
    }
    if (fds[0].revents != 0) {
      char sig = 0;
      while (::read(signal_pipe[0], &sig, 1) == 1) {
        if (sig == SIGUSR1) {
          std::printf("proxy: cut (reset): %zu connections reset\n", pairs.size());
          for (auto& p : pairs) {
            reset(p.client);
            reset(p.server);
          }
          pairs.clear();
          mode = Mode::reset;
        } else if (sig == SIGUSR2) {
          std::printf("proxy: cut (blackhole): %zu connections frozen\n", pairs.size());
          for (auto& p : pairs) p.frozen = true;
          mode = Mode::blackhole;
        } else if (sig == SIGHUP) {
          std::size_t dropped = 0;
          for (auto& p : pairs) {
            if (!p.frozen) continue;
            reset(p.client);
            reset(p.server);
            p.client = p.server = -1;
            ++dropped;
          }
          std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
          std::printf("proxy: healed: %zu frozen connections reset, %d refused during the cut\n",
                      dropped, refused);
          refused = 0;
          mode = Mode::forward;
        }
        std::fflush(stdout);
      }
      continue;  // the fds polled may have been closed
    }
    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        const int client = ::accept(listener, nullptr, nullptr);
        if (client < 0) break;
        if (mode == Mode::reset) {
          reset(client);
          ++refused;
          continue;
        }
        set_nonblocking(client);
        Pair p;
        p.client = client;
        if (mode == Mode::blackhole) {
          p.frozen = true;  // accepted, never forwarded
          ++refused;
        } else {
          p.server = connect_to(target_port);
          if (p.server < 0) {
            reset(client);
            continue;
          }
        }
        pairs.push_back(std::move(p));
      }
    }
    if (mode == Mode::blackhole) continue;  // nothing moves, nothing is closed, until the heal
    std::vector<bool> dead(pairs.size(), false);
    for (std::size_t k = 2; k < fds.size(); ++k) {
      const short ev = fds[k].revents;
      if (ev == 0) continue;
      auto [i, is_client] = owners[k - 2];
      Pair& p = pairs[i];
      bool& eof = is_client ? p.client_eof : p.server_eof;
      std::string& inbox = is_client ? p.to_server : p.to_client;
      std::string& outbox = is_client ? p.to_client : p.to_server;
      const int fd = fds[k].fd;
      if ((ev & POLLIN) != 0 && !eof && !read_into(fd, inbox)) eof = true;
      if ((ev & (POLLERR | POLLHUP)) != 0 && (ev & POLLIN) == 0) eof = true;
      if ((ev & POLLOUT) != 0 && !write_from(fd, outbox)) dead[i] = true;
    }
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      Pair& p = pairs[i];
      if (!write_from(p.server, p.to_server) || !write_from(p.client, p.to_client)) dead[i] = true;
      // One end closed: pass the close on once what it sent is delivered.
      if ((p.client_eof && p.to_server.empty()) || (p.server_eof && p.to_client.empty())) {
        dead[i] = true;
      }
    }
    for (std::size_t i = pairs.size(); i-- > 0;) {
      if (!dead[i]) continue;
      ::close(pairs[i].client);
      ::close(pairs[i].server);
      pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}
