#include "dataplane/app/local_api.h"

#include <grpcpp/grpcpp.h>
#include <rte_ethdev.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include "common/grpc_limits.h"
#include "common/trace_request.h"
#include "dataplane/app/flow_log_drain.h"
#include "dataplane/config/table_loader.h"
#include "dataplane/core/trace.h"
#include "onramp/v1/dataplane.grpc.pb.h"

namespace onramp::dp {

namespace pb = onramp::v1;

namespace {

// One StreamFlowLogs call: a thread of its own takes batches from the rings
// and writes them, one write in flight at a time, until the call ends (the
// agent went away, or the server shuts down).
class FlowLogStream final : public grpc::ServerWriteReactor<pb::FlowLogBatch> {
 public:
  // Records a batch holds at most, and how long an empty drain waits before
  // the next look.
  static constexpr size_t kBatch = 1024;
  static constexpr auto kPollEvery = std::chrono::milliseconds(100);

  explicit FlowLogStream(FlowLogDrain& drain) : drain_(drain) {
    thread_ = std::thread([this] { run(); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) ended_ = true;
    cv_.notify_all();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  void OnDone() override {
    // (Should gRPC call this inline from Finish, on the stream's own thread,
    // that thread has nothing left to do but return.)
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
    delete this;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!ended_) {
      batch_.Clear();
      lock.unlock();
      const size_t n = drain_.drain(batch_, kBatch);
      lock.lock();
      if (ended_) break;
      if (n == 0) {
        cv_.wait_for(lock, kPollEvery, [this] { return ended_; });
        continue;
      }
      writing_ = true;
      StartWrite(&batch_);
      cv_.wait(lock, [this] { return !writing_; });
    }
    lock.unlock();
    Finish(grpc::Status::OK);
  }

  FlowLogDrain& drain_;
  pb::FlowLogBatch batch_;  // the write in flight
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;  // guarded by mu_
  bool ended_ = false;    // guarded by mu_
  std::thread thread_;
};

}  // namespace

class LocalApi::Service final : public pb::DataplaneService::CallbackService {
 public:
  Service(TablePublisher& publisher, const StatsSources& sources)
      : publisher_(publisher), sources_(sources), drain_(publisher, *sources.workers) {}

  grpc::ServerWriteReactor<pb::FlowLogBatch>* StreamFlowLogs(
      grpc::CallbackServerContext*, const pb::FlowLogStreamRequest*) override {
    return new FlowLogStream(drain_);
  }

  grpc::ServerUnaryReactor* ApplyTable(grpc::CallbackServerContext* ctx,
                                       const pb::ApplyTableRequest* req,
                                       pb::ApplyTableResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto spec = table_spec_from_proto(req->table());
    if (spec.ok() && !sources_.neighbours) {
      if (Status s = check_next_hop_given(*spec); !s.ok()) spec = s;
    }
    if (!spec.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "table." + spec.error()));
      return reactor;
    }
    auto timing = publisher_.apply(*spec);
    if (!timing.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "table." + timing.error()));
      return reactor;
    }
    resp->set_version(spec->version);
    resp->set_build_us(timing->build_us);
    resp->set_publish_us(timing->publish_us);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const pb::DataplaneStatsRequest*,
                                     pb::DataplaneStats* resp) override {
    *resp = collect_stats(sources_);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* TraceFlow(grpc::CallbackServerContext* ctx,
                                      const pb::DataplaneTraceRequest* req,
                                      pb::DataplaneTraceResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto q = flow_query_from(*req);
    if (!q.ok()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, q.error()));
      return reactor;
    }
    auto lock = publisher_.lock();
    const ForwardingTable& table = publisher_.table();
    FlowTrace t = trace_flow(table, *q);
    resp->set_table_version(table.spec().version);
    if (t.listener >= 0) resp->set_listener(table.listener(t.listener).name);
    if (t.endpoint >= 0)
      resp->set_endpoint(table.listener(t.listener).endpoints[t.endpoint].address.to_string());
    resp->set_decided_by("maglev");
    for (auto& s : t.steps) resp->add_explanation(s);
    resp->add_explanation(
        "a flow established before a table change stays on its endpoint while that endpoint "
        "stays healthy, even at weight 0");
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* ctx,
                                   const pb::DataplaneHealthRequest*,
                                   pb::DataplaneHealthResponse* resp) override {
    uint32_t up = 0;
    for (const PortInfo& p : *sources_.ports) {
      rte_eth_link link{};
      if (rte_eth_link_get_nowait(p.id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) ++up;
    }
    auto lock = publisher_.lock();
    const ForwardingTable& table = publisher_.table();
    resp->set_ports(static_cast<uint32_t>(sources_.ports->size()));
    resp->set_ports_up(up);
    resp->set_table_version(table.spec().version);
    resp->set_pop(table.spec().pop);
    for (const Vip& v : table.vips()) resp->add_vips(v.address.to_string());
    *resp->mutable_next_hop() = next_hop_status(table.spec(), sources_.neighbours);
    resp->set_healthy(up == sources_.ports->size() && up > 0);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  TablePublisher& publisher_;
  StatsSources sources_;
  FlowLogDrain drain_;
};

namespace {

// A socket left by an earlier run is removed; a live one (another dataplane
// with the same --api-socket) or anything that is not a socket is refused,
// never deleted.
Status clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? ok_status() : error(path + ": " + std::strerror(errno));
  if (!S_ISSOCK(st.st_mode))
    return error(path + ": exists and is not a socket; not removed (choose another --api-socket)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return error(path + ": path too long for a socket");
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error(std::string("socket: ") + std::strerror(errno));
  bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  if (live)
    return error(path +
                 ": another process serves this socket (a second dataplane with the same "
                 "--api-socket?); it is left alone");
  if (::unlink(path.c_str()) != 0) return error(path + ": " + std::strerror(errno));
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<LocalApi>> LocalApi::start(const std::string& socket_path,
                                                  TablePublisher& publisher,
                                                  const StatsSources& sources) {
  std::unique_ptr<LocalApi> api(new LocalApi());
  api->path_ = socket_path;
  std::filesystem::path dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return error(dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  ONRAMP_RETURN_IF_ERROR(clear_stale_socket(socket_path));
  api->service_ = std::make_unique<Service>(publisher, sources);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(api->service_.get());
  limit_messages(builder);
  // The socket is created owner-only: the API changes what the PoP forwards.
  mode_t old = ::umask(0077);
  api->server_ = builder.BuildAndStart();
  ::umask(old);
  if (!api->server_) return error("cannot serve the local API on " + socket_path);
  // Read and write for root alone (a socket needs no execute bit).
  struct stat st {};
  if (::chmod(socket_path.c_str(), 0600) != 0 || ::lstat(socket_path.c_str(), &st) != 0)
    return error(socket_path + ": " + std::strerror(errno));
  api->socket_id_ = {st.st_dev, st.st_ino};
  return api;
}

LocalApi::~LocalApi() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  // Only our own socket: a path taken over meanwhile is someone else's.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && std::pair(st.st_dev, st.st_ino) == socket_id_)
    ::unlink(path_.c_str());
}

}  // namespace onramp::dp
