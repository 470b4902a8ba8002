// The controller's /metrics: PoPs by state, each PoP's applied and wanted
// table version, push-to-ACK latency, NACKs, admin requests by method and
// status code, route changes by reason and store latency
// (docs/observability.md). Event counts are bumped where they happen
// (thread-safe prometheus-cpp metrics); PoP state is read from the registry
// at each scrape.
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/controller/config_store.h"
#include "onramp/v1/admin.pb.h"

namespace onramp::ctl {

class ControllerMetrics {
 public:
  ControllerMetrics();
  ControllerMetrics(const ControllerMetrics&) = delete;
  ControllerMetrics& operator=(const ControllerMetrics&) = delete;

  // Event metrics, for the exposer.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // A host of a PoP acknowledged a table `seconds` after the controller
  // computed it (each host of a PoP counts).
  void acked(const std::string& pop, const std::string& host, double seconds);
  void nacked(const std::string& pop);
  // An admin call ended: "CreateListener", "OK".
  void admin_request(const std::string& method, const std::string& code);
  // A PoP's routes changed; reason: configuration, probes, fail_open,
  // fail_open_cleared, nearest_group.
  void route_change(const std::string& pop, const std::string& reason);
  // A store operation (commit, put_pops) took `seconds`.
  void store_operation(const std::string& op, double seconds);

  // Logs every admin call's end into admin_request(): add to the admin
  // server's builder.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> admin_interceptor();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>& push_ack_;
  prometheus::Family<prometheus::Counter>& nacks_;
  prometheus::Family<prometheus::Counter>& admin_requests_;
  prometheus::Family<prometheus::Counter>& route_changes_;
  prometheus::Family<prometheus::Histogram>& store_ops_;
};

// PoPs by state and each PoP's versions, from ListPops at each scrape; per
// host of each PoP, its applied version and flags.
class PopCollector final : public prometheus::Collectable {
 public:
  PopCollector(std::function<v1::ListPopsResponse()> pops,
               std::function<uint64_t()> config_version);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::function<v1::ListPopsResponse()> pops_;
  std::function<uint64_t()> config_version_;
};

// A ConfigStore that times commit() and put_pops() into `metrics`.
class TimedStore final : public ConfigStore {
 public:
  TimedStore(ConfigStore& inner, ControllerMetrics& metrics) : inner_(inner), metrics_(metrics) {}
  std::shared_ptr<const Config> snapshot() const override { return inner_.snapshot(); }
  CommitResult commit(const ConfigChange& change, uint64_t expected_version) override;
  std::vector<PopRecord> pops() const override { return inner_.pops(); }
  Status put_pops(const std::vector<PopRecord>& records) override;
  StoreIdentity identity() const override { return inner_.identity(); }
  void follow(std::function<void()> on_change) override { inner_.follow(std::move(on_change)); }

 private:
  ConfigStore& inner_;
  ControllerMetrics& metrics_;
};

}  // namespace onramp::ctl
