// A small client of the dataplane's local API (onramp.v1.DataplaneService)
// for the benchmark harness: reads counters while a replay runs, and applies
// tables in a loop to count what swaps cost. Prints JSON, one object a line.
//
//   dataplane-client --socket PATH health
//   dataplane-client --socket PATH stats
//   dataplane-client --socket PATH apply [--times N] FILE [FILE...]
//   dataplane-client --socket PATH flow-logs
//
// apply sends the files in turn, N sends in all (default: each once), each
// with version = previous + 1 so every apply is a new table. flow-logs reads
// the flow log stream and throws the records away, as an agent that keeps up
// would take them, until SIGTERM; it prints the records and batches read.
#include <google/protobuf/text_format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "onramp/v1/dataplane.grpc.pb.h"

namespace {

namespace pb = onramp::v1;
using Clock = std::chrono::steady_clock;

int usage() {
  std::fputs(
      "usage: dataplane-client --socket PATH health | stats | apply [--times N] FILE... | "
      "flow-logs\n",
      stderr);
  return 2;
}

std::unique_ptr<grpc::ClientContext> context(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

int fail(const char* what, const grpc::Status& st) {
  std::fprintf(stderr, "dataplane-client: %s: %s\n", what, st.error_message().c_str());
  return 1;
}

int stats(pb::DataplaneService::Stub& stub) {
  pb::DataplaneStats s;
  grpc::Status st = stub.GetStats(context(5).get(), pb::DataplaneStatsRequest(), &s);
  if (!st.ok()) return fail("GetStats", st);
  uint64_t port_rx = 0, port_tx = 0, missed = 0;
  for (const auto& p : s.ports()) {
    port_rx += p.rx_packets();
    port_tx += p.tx_packets();
    missed += p.missed();
  }
  std::printf(
      "{\"uptime_ms\": %llu, \"rx_packets\": %llu, \"forwarded\": %llu, \"dropped\": %llu, "
      "\"new_flows\": %llu, \"flows_moved\": %llu, \"flow_evictions\": %llu, "
      "\"busy_cycles\": %llu, \"tsc_hz\": %llu, \"tables_applied\": %llu, "
      "\"table_version\": %llu, \"port_rx\": %llu, \"port_tx\": %llu, \"missed\": %llu, "
      "\"flow_log_records\": %llu, \"flow_log_dropped\": %llu}\n",
      static_cast<unsigned long long>(s.uptime_ms()),
      static_cast<unsigned long long>(s.rx_packets()),
      static_cast<unsigned long long>(s.forwarded()), static_cast<unsigned long long>(s.dropped()),
      static_cast<unsigned long long>(s.new_flows()),
      static_cast<unsigned long long>(s.flows_moved()),
      static_cast<unsigned long long>(s.flow_evictions()),
      static_cast<unsigned long long>(s.busy_cycles()), static_cast<unsigned long long>(s.tsc_hz()),
      static_cast<unsigned long long>(s.tables_applied()),
      static_cast<unsigned long long>(s.table_version()), static_cast<unsigned long long>(port_rx),
      static_cast<unsigned long long>(port_tx), static_cast<unsigned long long>(missed),
      static_cast<unsigned long long>(s.flow_log_records()),
      static_cast<unsigned long long>(s.flow_log_dropped()));
  return 0;
}

// SIGTERM and SIGINT, blocked in the calling thread and every thread it
// starts after.
sigset_t blocked_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

grpc::ClientContext* g_flow_logs = nullptr;
std::atomic<bool> g_stop{false};

int flow_logs(pb::DataplaneService::Stub& stub) {
  grpc::ClientContext ctx;
  g_flow_logs = &ctx;
  // SIGTERM ends the stream from a thread of its own (TryCancel is not
  // async-signal-safe); main blocked it before gRPC started its threads.
  sigset_t set = blocked_signals();
  std::thread waiter([set] {
    int sig = 0;
    sigwait(&set, &sig);
    g_stop = true;
    g_flow_logs->TryCancel();
  });
  waiter.detach();
  auto reader = stub.StreamFlowLogs(&ctx, pb::FlowLogStreamRequest());
  pb::FlowLogBatch batch;
  uint64_t records = 0, batches = 0;
  while (reader->Read(&batch)) {
    records += static_cast<uint64_t>(batch.records_size());
    ++batches;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok() && !g_stop) return fail("StreamFlowLogs", st);
  std::printf("{\"records\": %llu, \"batches\": %llu}\n", static_cast<unsigned long long>(records),
              static_cast<unsigned long long>(batches));
  return 0;
}

bool read_table(const std::string& path, pb::ForwardingTable& out) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || !google::protobuf::TextFormat::ParseFromString(text.str(), &out)) {
    std::fprintf(stderr, "dataplane-client: %s: cannot read a ForwardingTable\n", path.c_str());
    return false;
  }
  return true;
}

uint64_t percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int apply(pb::DataplaneService::Stub& stub, const std::vector<std::string>& files, long times) {
  std::vector<pb::ForwardingTable> tables(files.size());
  for (size_t i = 0; i < files.size(); ++i)
    if (!read_table(files[i], tables[i])) return 1;
  if (times <= 0) times = static_cast<long>(files.size());
  pb::DataplaneHealthResponse health;
  grpc::Status st = stub.Health(context(5).get(), pb::DataplaneHealthRequest(), &health);
  if (!st.ok()) return fail("Health", st);
  uint64_t version = health.table_version();
  std::vector<uint64_t> build, publish, round_trip;
  auto t0 = Clock::now();
  for (long i = 0; i < times; ++i) {
    pb::ApplyTableRequest req;
    *req.mutable_table() = tables[static_cast<size_t>(i) % tables.size()];
    req.mutable_table()->set_version(++version);
    pb::ApplyTableResponse resp;
    auto t = Clock::now();
    st = stub.ApplyTable(context(30).get(), req, &resp);
    if (!st.ok()) return fail("ApplyTable", st);
    round_trip.push_back(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count()));
    build.push_back(resp.build_us());
    publish.push_back(resp.publish_us());
  }
  double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "{\"applied\": %ld, \"seconds\": %.3f, \"build_us_p50\": %llu, \"build_us_max\": %llu, "
      "\"publish_us_p50\": %llu, \"publish_us_max\": %llu, \"round_trip_us_p50\": %llu, "
      "\"round_trip_us_max\": %llu, \"last_version\": %llu}\n",
      times, total_s, static_cast<unsigned long long>(percentile(build, 0.5)),
      static_cast<unsigned long long>(percentile(build, 1.0)),
      static_cast<unsigned long long>(percentile(publish, 0.5)),
      static_cast<unsigned long long>(percentile(publish, 1.0)),
      static_cast<unsigned long long>(percentile(round_trip, 0.5)),
      static_cast<unsigned long long>(percentile(round_trip, 1.0)),
      static_cast<unsigned long long>(version));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  int i = 1;
  if (i + 1 < argc && std::strcmp(argv[i], "--socket") == 0) {
    socket = argv[i + 1];
    i += 2;
  }
  if (socket.empty() || i >= argc) return usage();
  std::string cmd = argv[i++];
  // flow-logs waits for SIGTERM in a thread: no thread of gRPC's may take it.
  if (cmd == "flow-logs") blocked_signals();
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto stub = pb::DataplaneService::NewStub(channel);
  if (cmd == "health") {
    pb::DataplaneHealthResponse h;
    grpc::Status st = stub->Health(context(2).get(), pb::DataplaneHealthRequest(), &h);
    if (!st.ok()) return fail("Health", st);
    std::printf("{\"healthy\": %s, \"table_version\": %llu}\n", h.healthy() ? "true" : "false",
                static_cast<unsigned long long>(h.table_version()));
    return h.healthy() ? 0 : 1;
  }
  if (cmd == "stats") return i == argc ? stats(*stub) : usage();
  if (cmd == "flow-logs") return i == argc ? flow_logs(*stub) : usage();
  if (cmd == "apply") {
    long times = 0;
    if (i + 1 < argc && std::strcmp(argv[i], "--times") == 0) {
      times = std::strtol(argv[i + 1], nullptr, 10);
      i += 2;
    }
    std::vector<std::string> files(argv + i, argv + argc);
    if (files.empty()) return usage();
    return apply(*stub, files, times);
  }
  return usage();
}
