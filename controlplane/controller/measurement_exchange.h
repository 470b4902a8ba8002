// What one PoP's routes need from the other PoPs' measurements, shared
// between controller replicas (docs/controller.md "Shared measurements"):
// each replica publishes, for each PoP whose session it holds, the PoP's
// eligibility as a relay, its endpoint RTTs and verdicts and its mesh row;
// every replica computes a PoP's table from the stored snapshots of the
// other PoPs. In process for one controller (LocalMeasurements); on etcd,
// leased and rate-bounded, for replicas (etcd_measurements.h).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "controlplane/routing/route_computer.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

namespace v1 = onramp::v1;

using SharedSnapshot = std::shared_ptr<const v1::SharedMeasurements>;

class MeasurementExchange {
 public:
  virtual ~MeasurementExchange() = default;

  // What PoP `pop` shares now that its session is here; null withdraws it
  // (the session ended). True when the stored view changed at once (in
  // process); otherwise it changes when the write lands, and the callback
  // of follow() says so.
  virtual bool publish(const std::string& pop, SharedSnapshot snapshot) = 0;

  // The PoP's snapshot as stored now; null when none (not connected to any
  // replica). The same pointer until the stored content changes.
  virtual SharedSnapshot get(const std::string& pop) const = 0;

  // Every PoP with a stored snapshot.
  virtual std::map<std::string, SharedSnapshot> all() const = 0;

  // Calls `on_change(pop)`, from a thread of the exchange's, each time a
  // PoP's stored snapshot changes other than by a publish() that returned
  // true. follow({}) stops; the callback is not running when it returns.
  virtual void follow(std::function<void(const std::string& pop)> on_change) = 0;

  // This replica's name, as written into its snapshots; empty in process.
  virtual std::string replica() const { return {}; }
};

// One controller: the stored view is what was published, at once.
class LocalMeasurements final : public MeasurementExchange {
 public:
  bool publish(const std::string& pop, SharedSnapshot snapshot) override;
  SharedSnapshot get(const std::string& pop) const override;
  std::map<std::string, SharedSnapshot> all() const override;
  void follow(std::function<void(const std::string&)>) override {}

 private:
  mutable std::mutex mu_;  // guards shared_
  std::map<std::string, SharedSnapshot> shared_;
};

// The part of a probe report other PoPs' routes read (SharedMeasurements
// .probes), in key order so that equal measurements encode alike.
v1::ProbeReport shared_probes(const v1::ProbeReport& report);

// Whether the two list the same host tunnel sources, in the same order.
bool same_host_tunnels(const v1::SharedMeasurements& a, const v1::SharedMeasurements& b);

// Whether `next` differs from `written` in a way that can move a route of
// another PoP: its tunnel sources (its hosts' too) or eligibility bits, an
// endpoint or peer appearing or going, a verdict, a loss crossing the relay
// limit, or an
// RTT moving by a quarter of the relay margin the route computation
// applies at that RTT (max(relay_margin_ms, relay_margin_fraction x RTT)).
// Smaller moves stay unwritten: a stored RTT is never further than that
// from the measured one. A peer path going down or up is written too (pop
// matrix shows it on every replica; it is rare).
bool moves_routes(const v1::SharedMeasurements& written, const v1::SharedMeasurements& next,
                  const RoutePolicy& policy);

}  // namespace onramp::ctl
