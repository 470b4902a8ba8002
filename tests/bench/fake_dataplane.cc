// Stands in for onramp-dataplane's local API on many unix sockets at once, so
// that a benchmark can run hundreds of onramp-agent processes (simulated PoPs)
// on one machine without a dataplane each. Every socket is its own PoP: it
// accepts any table ApplyTable sends and remembers its version, which Health
// then reports, as the real dataplane does. It forwards nothing.
//
//   fake-dataplane SOCKET [SOCKET...]      (runs until SIGINT or SIGTERM)
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "onramp/v1/dataplane.grpc.pb.h"

namespace {

namespace pb = onramp::v1;

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

class FakeDataplane final : public pb::DataplaneService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ApplyTable(grpc::CallbackServerContext* ctx,
                                       const pb::ApplyTableRequest* req,
                                       pb::ApplyTableResponse* resp) override {
    version_.store(req->table().version());
    pop_ = req->table().pop();
    resp->set_version(req->table().version());
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const pb::DataplaneStatsRequest*,
                                     pb::DataplaneStats* resp) override {
    resp->set_table_version(version_.load());
    resp->set_uptime_ms(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::steady_clock::now() - start_)
                                                  .count()));
    resp->set_workers(1);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* ctx,
                                   const pb::DataplaneHealthRequest*,
                                   pb::DataplaneHealthResponse* resp) override {
    resp->set_healthy(true);
    resp->set_table_version(version_.load());
    resp->set_ports(1);
    resp->set_ports_up(1);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  std::atomic<uint64_t> version_{0};
  std::string pop_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: fake-dataplane SOCKET [SOCKET...]\n", stderr);
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::vector<std::unique_ptr<FakeDataplane>> services;
  std::vector<std::unique_ptr<grpc::Server>> servers;
  for (int i = 1; i < argc; ++i) {
    ::unlink(argv[i]);
    services.push_back(std::make_unique<FakeDataplane>());
    grpc::ServerBuilder b;
    b.AddListeningPort(std::string("unix:") + argv[i], grpc::InsecureServerCredentials());
    b.RegisterService(services.back().get());
    servers.push_back(b.BuildAndStart());
    if (!servers.back()) {
      std::fprintf(stderr, "fake-dataplane: cannot serve on %s\n", argv[i]);
      return 1;
    }
  }
  std::printf("fake-dataplane: %d sockets\n", argc - 1);
  std::fflush(stdout);
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (auto& s : servers) s->Shutdown(std::chrono::system_clock::now());
  for (int i = 1; i < argc; ++i) ::unlink(argv[i]);
  return 0;
}
