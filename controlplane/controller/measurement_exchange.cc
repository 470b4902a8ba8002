#include "controlplane/controller/measurement_exchange.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace onramp::ctl {
namespace {

auto key_of(const v1::ProbeResult& r) {
  return std::tie(r.accelerator(), r.listener(), r.endpoint_group(), r.address());
}

// Whether the measured RTT `now` moved far enough from the `written` one
// to matter, by the margin at the written RTT (what the other replicas
// compute with); a measured and an unmeasured one always differ.
bool rtt_moved(double written, double now, const RoutePolicy& policy) {
  if ((written < 0) != (now < 0)) return true;
  if (written < 0) return false;
  double margin = std::max(policy.relay_margin_ms, policy.relay_margin_fraction * written);
  return std::fabs(now - written) >= margin / 4;
}

}  // namespace

bool LocalMeasurements::publish(const std::string& pop, SharedSnapshot snapshot) {
  std::lock_guard lock(mu_);
  if (snapshot)
    shared_[pop] = std::move(snapshot);
  else
    shared_.erase(pop);
  return true;
}

SharedSnapshot LocalMeasurements::get(const std::string& pop) const {
  std::lock_guard lock(mu_);
  auto it = shared_.find(pop);
  return it == shared_.end() ? nullptr : it->second;
}

std::map<std::string, SharedSnapshot> LocalMeasurements::all() const {
  std::lock_guard lock(mu_);
  return shared_;
}

v1::ProbeReport shared_probes(const v1::ProbeReport& report) {
  v1::ProbeReport out;
  out.set_time_ms(report.time_ms());
  for (const v1::ProbeResult& r : report.results()) {
    v1::ProbeResult* t = out.add_results();
    t->set_accelerator(r.accelerator());
    t->set_listener(r.listener());
    t->set_endpoint_group(r.endpoint_group());
    t->set_address(r.address());
    t->set_known(r.known());
    t->set_healthy(r.healthy());
    t->set_rtt_ms(std::isfinite(r.rtt_ms()) ? r.rtt_ms() : -1);
  }
  // Of two results for one endpoint the later wins, as PopHealth has it:
  // a stable sort keeps their order, and the earlier is dropped.
  auto* results = out.mutable_results();
  std::stable_sort(results->begin(), results->end(),
                   [](const auto& a, const auto& b) { return key_of(a) < key_of(b); });
  for (int i = results->size() - 1; i > 0; --i)
    if (key_of(results->Get(i - 1)) == key_of(results->Get(i))) results->DeleteSubrange(i - 1, 1);
  for (const v1::PeerResult& p : report.peers()) {
    v1::PeerResult* t = out.add_peers();
    t->set_pop(p.pop());
    t->set_address(p.address());
    t->set_rtt_ms(std::isfinite(p.rtt_ms()) ? p.rtt_ms() : -1);
    t->set_loss_percent(std::isfinite(p.loss_percent()) ? p.loss_percent() : 100);
    t->set_down(p.down());
  }
  auto* peers = out.mutable_peers();
  std::stable_sort(peers->begin(), peers->end(),
                   [](const auto& a, const auto& b) { return a.pop() < b.pop(); });
  return out;
}

bool same_host_tunnels(const v1::SharedMeasurements& a, const v1::SharedMeasurements& b) {
  if (a.host_tunnel_sources_size() != b.host_tunnel_sources_size()) return false;
  for (int i = 0; i < a.host_tunnel_sources_size(); ++i)
    if (a.host_tunnel_sources(i).ipv4() != b.host_tunnel_sources(i).ipv4() ||
        a.host_tunnel_sources(i).ipv6() != b.host_tunnel_sources(i).ipv6())
      return false;
  return true;
}

bool moves_routes(const v1::SharedMeasurements& written, const v1::SharedMeasurements& next,
                  const RoutePolicy& policy) {
  if (written.pop() != next.pop() ||
      written.tunnel_source().ipv4() != next.tunnel_source().ipv4() ||
      written.tunnel_source().ipv6() != next.tunnel_source().ipv6() ||
      written.dataplane_healthy() != next.dataplane_healthy() ||
      written.bgp_announced() != next.bgp_announced())
    return true;
  if (!same_host_tunnels(written, next)) return true;
  const v1::ProbeReport& a = written.probes();
  const v1::ProbeReport& b = next.probes();
  if (a.results_size() != b.results_size() || a.peers_size() != b.peers_size()) return true;
  for (int i = 0; i < a.results_size(); ++i) {
    const v1::ProbeResult& x = a.results(i);
    const v1::ProbeResult& y = b.results(i);
    if (key_of(x) != key_of(y) || x.known() != y.known() || x.healthy() != y.healthy() ||
        rtt_moved(x.rtt_ms(), y.rtt_ms(), policy))
      return true;
  }
  for (int i = 0; i < a.peers_size(); ++i) {
    const v1::PeerResult& x = a.peers(i);
    const v1::PeerResult& y = b.peers(i);
    const double limit = policy.relay_max_loss_percent;
    if (x.pop() != y.pop() || x.address() != y.address() || x.down() != y.down() ||
        (x.loss_percent() > limit) != (y.loss_percent() > limit) ||
        rtt_moved(x.rtt_ms(), y.rtt_ms(), policy))
      return true;
  }
  return false;
}

}  // namespace onramp::ctl
