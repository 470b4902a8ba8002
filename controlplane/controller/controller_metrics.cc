#include "controlplane/controller/controller_metrics.h"

#include <grpcpp/support/interceptor.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <map>

namespace onramp::ctl {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Seconds: a push to a nearby PoP ACKs in milliseconds, a big table to a
// far one in seconds; a store commit is an fsync.
const prometheus::Histogram::BucketBoundaries kPushBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                              0.5,   1,    2.5,   5,    10,  30};
const prometheus::Histogram::BucketBoundaries kStoreBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK:
      return "OK";
    case grpc::CANCELLED:
      return "CANCELLED";
    case grpc::UNKNOWN:
      return "UNKNOWN";
    case grpc::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::ABORTED:
      return "ABORTED";
    case grpc::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::INTERNAL:
      return "INTERNAL";
    case grpc::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// Counts one admin call when its status goes out.
class AdminInterceptor final : public grpc::experimental::Interceptor {
 public:
  AdminInterceptor(ControllerMetrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS))
      metrics_.admin_request(method_, code_name(methods->GetSendStatus().error_code()));
    methods->Proceed();
  }

 private:
  ControllerMetrics& metrics_;
  std::string method_;
};

class AdminInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AdminInterceptorFactory(ControllerMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // "/onramp.v1.AdminService/CreateListener" -> "CreateListener"; the
    // health and reflection services keep their full name.
    std::string method = info->method() ? info->method() : "";
    const std::string admin = "/onramp.v1.AdminService/";
    if (method.rfind(admin, 0) == 0) method = method.substr(admin.size());
    return new AdminInterceptor(metrics_, std::move(method));
  }

 private:
  ControllerMetrics& metrics_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

ControllerMetrics::ControllerMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      push_ack_(prometheus::BuildHistogram()
                    .Name("onramp_push_ack_seconds")
                    .Help("Time from computing a PoP's table to its agent's ACK")
                    .Register(*registry_)),
      nacks_(prometheus::BuildCounter()
                 .Name("onramp_table_nacks_total")
                 .Help("Tables a PoP's agent refused")
                 .Register(*registry_)),
      admin_requests_(prometheus::BuildCounter()
                          .Name("onramp_admin_requests_total")
                          .Help("Admin API calls, by method and gRPC status code")
                          .Register(*registry_)),
      route_changes_(prometheus::BuildCounter()
                         .Name("onramp_route_changes_total")
                         .Help("Changes of a PoP's routes, by reason")
                         .Register(*registry_)),
      store_ops_(prometheus::BuildHistogram()
                     .Name("onramp_store_operation_seconds")
                     .Help("Time the configuration store took, by operation")
                     .Register(*registry_)) {}

void ControllerMetrics::acked(const std::string& pop, const std::string& host, double seconds) {
  push_ack_.Add({{"pop", pop}, {"host", host}}, kPushBuckets).Observe(seconds);
}

void ControllerMetrics::nacked(const std::string& pop) { nacks_.Add({{"pop", pop}}).Increment(); }

void ControllerMetrics::admin_request(const std::string& method, const std::string& code) {
  admin_requests_.Add({{"method", method}, {"code", code}}).Increment();
}

void ControllerMetrics::route_change(const std::string& pop, const std::string& reason) {
  route_changes_.Add({{"pop", pop}, {"reason", reason}}).Increment();
}

void ControllerMetrics::store_operation(const std::string& op, double seconds) {
  store_ops_.Add({{"op", op}}, kStoreBuckets).Observe(seconds);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ControllerMetrics::admin_interceptor() {
  return std::make_unique<AdminInterceptorFactory>(*this);
}

PopCollector::PopCollector(std::function<v1::ListPopsResponse()> pops,
                           std::function<uint64_t()> config_version)
    : pops_(std::move(pops)), config_version_(std::move(config_version)) {}

std::vector<MetricFamily> PopCollector::Collect() const {
  v1::ListPopsResponse list = pops_();
  auto gauge = [](std::vector<ClientMetric::Label> labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    return m;
  };
  MetricFamily by_state{.name = "onramp_pops",
                        .help =
                            "PoPs the controller knows, by session state (on_another_replica: "
                            "connected to another controller replica)",
                        .type = MetricType::Gauge};
  MetricFamily connected{.name = "onramp_pop_connected",
                         .help = "1 while the PoP's agent holds a session to the controller",
                         .type = MetricType::Gauge};
  MetricFamily applied{.name = "onramp_pop_applied_table_version",
                       .help = "Version of the last table the PoP acknowledged",
                       .type = MetricType::Gauge};
  MetricFamily computed{.name = "onramp_pop_computed_table_version",
                        .help = "Version of the table the controller wants the PoP on",
                        .type = MetricType::Gauge};
  MetricFamily seen{.name = "onramp_pop_last_seen_timestamp_seconds",
                    .help = "When the PoP's agent last sent anything, Unix seconds",
                    .type = MetricType::Gauge};
  MetricFamily dataplane{.name = "onramp_pop_dataplane_healthy",
                         .help = "1 when the PoP's agent last reported its dataplane healthy",
                         .type = MetricType::Gauge};
  MetricFamily bgp{.name = "onramp_pop_bgp_announced",
                   .help = "1 when the PoP's agent last reported its VIPs announced",
                   .type = MetricType::Gauge};
  MetricFamily host_applied{
      .name = "onramp_pop_host_applied_table_version",
      .help = "Version of the last table the PoP's host acknowledged, per connected host",
      .type = MetricType::Gauge};
  MetricFamily host_dataplane{
      .name = "onramp_pop_host_dataplane_healthy",
      .help = "1 when the host's agent last reported its dataplane healthy, per connected host",
      .type = MetricType::Gauge};
  MetricFamily host_bgp{
      .name = "onramp_pop_host_bgp_announced",
      .help = "1 when the host's agent last reported its VIPs announced, per connected host",
      .type = MetricType::Gauge};
  std::map<std::string, int> states = {
      {"connected", 0}, {"disconnected", 0}, {"on_another_replica", 0}};
  for (const v1::Pop& p : list.pops()) {
    bool up = p.state() == v1::POP_CONNECTED;
    // Connected to another replica (etcd): that replica's series describe
    // it, so that each PoP has one set, from the replica that holds it.
    if (up && p.hosts_size() == 0) {
      ++states["on_another_replica"];
      continue;
    }
    ++states[up ? "connected" : "disconnected"];
    std::vector<ClientMetric::Label> pop = {{"pop", p.id()}};
    connected.metric.push_back(gauge(pop, up ? 1 : 0));
    applied.metric.push_back(gauge(pop, static_cast<double>(p.applied_version())));
    computed.metric.push_back(gauge(pop, static_cast<double>(p.sent_version())));
    seen.metric.push_back(gauge(pop, static_cast<double>(p.last_seen_ms()) / 1000.0));
    dataplane.metric.push_back(gauge(pop, up && p.dataplane_healthy() ? 1 : 0));
    bgp.metric.push_back(gauge(pop, up && p.bgp_announced() ? 1 : 0));
    for (const v1::PopHost& h : p.hosts()) {
      std::vector<ClientMetric::Label> host = {{"pop", p.id()}, {"host", h.name()}};
      host_applied.metric.push_back(gauge(host, static_cast<double>(h.applied_version())));
      host_dataplane.metric.push_back(gauge(host, h.dataplane_healthy() ? 1 : 0));
      host_bgp.metric.push_back(gauge(host, h.bgp_announced() ? 1 : 0));
    }
  }
  for (const auto& [state, n] : states) by_state.metric.push_back(gauge({{"state", state}}, n));
  MetricFamily version{.name = "onramp_config_version",
                       .help = "Version of the controller's configuration",
                       .type = MetricType::Gauge};
  version.metric.push_back(gauge({}, static_cast<double>(config_version_())));
  return {by_state, connected,    applied,        computed, seen,   dataplane,
          bgp,      host_applied, host_dataplane, host_bgp, version};
}

CommitResult TimedStore::commit(const ConfigChange& change, uint64_t expected_version) {
  auto t0 = std::chrono::steady_clock::now();
  CommitResult r = inner_.commit(change, expected_version);
  metrics_.store_operation("commit", seconds_since(t0));
  return r;
}

Status TimedStore::put_pops(const std::vector<PopRecord>& records) {
  auto t0 = std::chrono::steady_clock::now();
  Status s = inner_.put_pops(records);
  metrics_.store_operation("put_pops", seconds_since(t0));
  return s;
}

}  // namespace onramp::ctl
