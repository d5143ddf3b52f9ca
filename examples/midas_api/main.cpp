// SPDX-License-Identifier: MIT
// midas-api: the Midas API service (MIDAS_API.md). Configuration comes from the environment
// (see --help); stdout gets one line, `listening on http://HOST:PORT`; logs go to stderr.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "config.hpp"
#include "crypto/credentials.hpp"
#include "http/app.hpp"
#include "logging.hpp"

namespace {

int encrypt_and_print(const std::string& json_text, const std::string& aes_key) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::cerr << "midas-api: --encrypt wants a JSON object\n";
    return 2;
  }
  auto enc = midas_api::crypto::encrypt_credentials(j, aes_key);
  if (!enc) {
    std::cerr << "midas-api: cannot encrypt: " << enc.error().message << '\n';
    return 1;
  }
  std::cout << *enc << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{
      "midas-api: the Midas API service (balances, transactions, agents, the Midas error model).\n"
      "Prints `listening on http://HOST:PORT` on stdout once it accepts connections.\n"
      "`midas-api worker` runs join workers only (plus /healthz, /readyz, /metrics, /tasks)."};
  std::optional<std::string> host;
  std::optional<int> port;
  std::optional<std::string> backend;
  std::optional<std::string> encrypt;
  cli.add_option("--host", host, "Listen address (default DEV_HOST or 0.0.0.0)");
  cli.add_option("--port", port, "Listen port; 0 picks a free one (default DEV_PORT or 8000)")
      ->check(CLI::Range(0, 65535));
  cli.add_option("--backend", backend, "Task backend URL (default MIDAS_BACKEND_URL or memory://)");
  cli.add_option("--encrypt", encrypt,
                 "Print the AES credential of this JSON object (with AES_KEY) and exit");
  CLI::App* worker_cmd = cli.add_subcommand(
      "worker",
      "Run the join workers only, like the original's separate retry worker: no API routes, so "
      "API processes (WORKER_CONCURRENCY=0) and worker processes scale apart. Serves /healthz, "
      "/readyz, /metrics and /tasks on --port for probes.");
  worker_cmd->fallthrough();  // --port, --host, --backend also after "worker"
  cli.footer(midas_api::environment_help());
  CLI11_PARSE(cli, argc, argv);

  // Signals are handled by one thread with sigwait: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  midas_api::Config config;
  try {
    config = midas_api::load_config(midas_api::process_env());
  } catch (const midas_api::ConfigError& e) {
    std::cerr << "midas-api: configuration error: " << e.what() << '\n';
    return 2;
  }
  if (encrypt) return encrypt_and_print(*encrypt, config.aes_key);
  if (host) config.host = *host;
  if (port) config.port = *port;
  if (backend) config.backend_url = *backend;
  const bool worker_mode = worker_cmd->parsed();
  if (worker_mode && config.worker_concurrency <= 0) {
    std::cerr << "midas-api: configuration error: WORKER_CONCURRENCY: `midas-api worker` needs at "
                 "least 1\n";
    return 2;
  }

  const midas_api::Logger log(config.log_level, config.log_json);
  try {
    const std::string host_name = config.host;
    const int wanted_port = config.port;
    auto services = midas_api::build_services(std::move(config), log);
    midas_api::Server server(
        std::move(services), host_name, wanted_port,
        worker_mode ? midas_api::ServerMode::worker : midas_api::ServerMode::api);
    if (worker_mode && server.services().config.backend_url.starts_with("memory:")) {
      log.warning(
          "midas-api worker on memory:// sees only its own (empty) queue: point it and the API "
          "at the same postgresql:// or redis:// backend");
    }
    server.services().start_worker();

    std::thread signal_thread([&server, &log, signals] {
      int sig = 0;
      sigwait(&signals, &sig);
      log.info("signal received: stopping", {{"signal", sig}});
      server.stop();
    });

    const std::string shown = host_name == "0.0.0.0" || host_name.empty() ? "127.0.0.1" : host_name;
    log.info("listening", {{"host", host_name},
                           {"port", server.port()},
                           {"backend", server.services().config.backend_url},
                           {"mode", worker_mode ? "worker" : "api"},
                           {"workers", server.services().config.worker_concurrency}});
    std::cout << "listening on http://" << shown << ':' << server.port() << std::endl;
    server.run();
    server.stop();
    // Wake the signal thread if the server stopped for another reason.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
    log.info("stopped");
    return 0;
  } catch (const midas_api::ConfigError& e) {
    log.error("configuration error", {{"setting", e.setting()}, {"error", e.what()}});
    std::cerr << "midas-api: configuration error: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    log.error("start-up failed", {{"error", e.what()}});
    std::cerr << "midas-api: start-up failed: " << e.what() << '\n';
    return 1;
  }
}
