// onramp-controller: opens the configuration store, serves the admin and PoP
// APIs, and runs until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>

#include "controlplane/controller/auth.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/log.h"
#include "controlplane/controller/options.h"
#include "controlplane/controller/sqlite_store.h"

int main(int argc, char** argv) {
  using namespace onramp::ctl;
  // Signals are taken by sigwait at the end. Blocked first, before gRPC
  // starts any thread, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Options opts;
  bool help = false;
  if (std::string err = parse_options(argc, argv, opts, help); !err.empty()) {
    std::fprintf(stderr, "onramp-controller: %s\n", err.c_str());
    return 2;
  }
  if (help) {
    std::fputs(options_usage(), stdout);
    return 0;
  }
  // Refuse an unsafe or broken set-up before touching the database.
  if (std::string problem = ControllerServer::check(opts.server); !problem.empty()) {
    std::fprintf(stderr, "onramp-controller: %s\n", problem.c_str());
    return 2;
  }
  std::string err;
  if (!opts.admin_token_file.empty() &&
      !AdminAuth::load_tokens(opts.admin_token_file, opts.server.admin_tokens, err)) {
    std::fprintf(stderr, "onramp-controller: %s\n", err.c_str());
    return 2;
  }
  auto store = SqliteStore::open(opts.db, err);
  if (!store) {
    std::fprintf(stderr, "onramp-controller: %s\n", err.c_str());
    return 1;
  }
  log(LogLevel::info,
      "configuration " + opts.db + " at version " + std::to_string(store->snapshot()->version));
  auto server = ControllerServer::start(*store, opts.server, err);
  if (!server) {
    std::fprintf(stderr, "onramp-controller: %s\n", err.c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  log(LogLevel::info, std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
  server->shutdown();
  return 0;
}
