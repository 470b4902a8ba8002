// Creating many endpoints through the admin API, one call each, against an
// in-process controller (SQLite store, loopback gRPC, plaintext): how the
// cost of one mutation grows with the configuration. Prints the mean and
// median time of the first and the last 100 calls. A benchmark, not a test
// (docs/performance.md "Admin mutations").
//
//   admin-create-bench [--endpoints N] [--listeners L]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/log.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/sqlite_store.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace {

namespace v1 = onramp::v1;
using Clock = std::chrono::steady_clock;

template <typename Req, typename Call>
bool call(v1::AdminService::Stub& admin, Call method, const Req& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  Req out;
  grpc::Status s = (admin.*method)(&ctx, req, &out);
  if (!s.ok()) std::fprintf(stderr, "admin call failed: %s\n", s.error_message().c_str());
  return s.ok();
}

// Mean and median of v[from, from + n), in ms.
std::pair<double, double> stats(const std::vector<double>& v, size_t from, size_t n) {
  std::vector<double> part(v.begin() + static_cast<std::ptrdiff_t>(from),
                           v.begin() + static_cast<std::ptrdiff_t>(from + n));
  double sum = 0;
  for (double x : part) sum += x;
  std::sort(part.begin(), part.end());
  return {sum / static_cast<double>(n), part[n / 2]};
}

}  // namespace

int main(int argc, char** argv) {
  int endpoints = 10000, listeners = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--endpoints") endpoints = std::atoi(argv[i + 1]);
    if (flag == "--listeners") listeners = std::atoi(argv[i + 1]);
  }
  if (endpoints < 200 || listeners < 1) {
    std::fprintf(stderr, "usage: admin-create-bench [--endpoints N>=200] [--listeners L>=1]\n");
    return 2;
  }
  onramp::log::set_level(onramp::log::Level::warn);
  char tmpl[] = "/tmp/onramp-admin-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  int rc = 0;
  {
    auto store = onramp::ctl::SqliteStore::open(dir + "/c.db", {.init = true});
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.error().c_str());
      return 1;
    }
    auto server = onramp::ctl::ControllerServer::start(
        **store, {.admin_listen = "127.0.0.1:0", .pop_listen = "127.0.0.1:0", .plaintext = true});
    if (!server.ok()) {
      std::fprintf(stderr, "%s\n", server.error().c_str());
      return 1;
    }
    auto admin = v1::AdminService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->admin_port()),
                            grpc::InsecureChannelCredentials()));
    v1::Accelerator a;
    a.set_name("bench");
    a.set_enabled(true);
    a.add_vips("203.0.113.10");
    bool ok = call(*admin, &v1::AdminService::Stub::CreateAccelerator, a);
    for (int l = 0; ok && l < listeners; ++l) {
      v1::Listener li;
      li.set_accelerator("bench");
      li.set_name("l" + std::to_string(l));
      li.set_protocol(v1::TCP);
      li.add_port_ranges()->set_first(static_cast<uint32_t>(1000 + l));
      v1::EndpointGroup g;
      g.set_accelerator("bench");
      g.set_listener(li.name());
      g.set_name("g");
      ok = call(*admin, &v1::AdminService::Stub::CreateListener, li) &&
           call(*admin, &v1::AdminService::Stub::CreateEndpointGroup, g);
    }
    std::vector<double> ms;
    ms.reserve(static_cast<size_t>(endpoints));
    const auto start = Clock::now();
    for (int i = 0; ok && i < endpoints; ++i) {
      v1::Endpoint e;
      e.set_accelerator("bench");
      e.set_listener("l" + std::to_string(i % listeners));
      e.set_endpoint_group("g");
      e.set_address("10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
                    std::to_string(i & 255));
      const auto t0 = Clock::now();
      ok = call(*admin, &v1::AdminService::Stub::CreateEndpoint, e);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!ok) {
      rc = 1;
    } else {
      std::printf("endpoints %d in %d listeners: %.1f s in all\n", endpoints, listeners, total_s);
      auto [first_mean, first_median] = stats(ms, 0, 100);
      auto [last_mean, last_median] = stats(ms, ms.size() - 100, 100);
      std::printf("first 100: mean %.2f ms, median %.2f ms per call\n", first_mean, first_median);
      std::printf("last 100:  mean %.2f ms, median %.2f ms per call\n", last_mean, last_median);
    }
    (*server)->shutdown();
  }
  std::filesystem::remove_all(dir);
  return rc;
}
