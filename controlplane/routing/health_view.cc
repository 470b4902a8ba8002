#include "controlplane/routing/health_view.h"

#include <algorithm>
#include <cmath>

namespace onramp::ctl {

v1::HealthState health_state(const v1::ProbeResult* r) {
  if (!r || !r->known()) return v1::HEALTH_STATE_UNKNOWN;
  return r->healthy() ? v1::HEALTH_STATE_HEALTHY : v1::HEALTH_STATE_UNHEALTHY;
}

bool routable(const v1::ProbeResult* r) { return health_state(r) != v1::HEALTH_STATE_UNHEALTHY; }

PopHealth::Update PopHealth::replace(const v1::ProbeReport& report, int64_t received_ms) {
  Update u;
  std::map<Key, v1::ProbeResult> next;
  for (const v1::ProbeResult& r : report.results()) {
    if (r.accelerator().empty() || r.listener().empty() || r.endpoint_group().empty() ||
        r.address().empty()) {
      ++u.dropped;
      continue;
    }
    v1::ProbeResult& slot =
        next[Key{r.accelerator(), r.listener(), r.endpoint_group(), r.address()}];
    slot = r;
    if (!std::isfinite(slot.rtt_ms())) slot.set_rtt_ms(-1);
    if (!std::isfinite(slot.last_rtt_ms())) slot.set_last_rtt_ms(-1);
  }
  // A verdict changed when an endpoint's state differs, counting an endpoint
  // missing on either side as UNKNOWN.
  for (const auto& [key, r] : next) {
    auto old = results_.find(key);
    const v1::HealthState was = health_state(old == results_.end() ? nullptr : &old->second);
    const v1::HealthState is = health_state(&r);
    if (was != is) u.verdict_changed = true;
    if (was != is && was != v1::HEALTH_STATE_UNKNOWN && is != v1::HEALTH_STATE_UNKNOWN)
      u.verdict_flipped = true;
    if (is == v1::HEALTH_STATE_UNKNOWN) ++u.unknown;
  }
  for (const auto& [key, r] : results_)
    if (!next.count(key) && health_state(&r) != v1::HEALTH_STATE_UNKNOWN) u.verdict_changed = true;
  results_ = std::move(next);
  peers_.clear();
  for (const v1::PeerResult& r : report.peers()) {
    if (r.pop().empty()) continue;
    v1::PeerResult& slot = peers_[r.pop()];
    slot = r;
    // Not measured, as the agent writes it, rather than a NaN routing
    // would compare.
    if (!std::isfinite(slot.rtt_ms())) slot.set_rtt_ms(-1);
    if (!std::isfinite(slot.last_rtt_ms())) slot.set_last_rtt_ms(-1);
    if (!std::isfinite(slot.jitter_ms()) || slot.jitter_ms() < 0) slot.set_jitter_ms(0);
    if (!std::isfinite(slot.loss_percent())) slot.set_loss_percent(100);
    slot.set_loss_percent(std::clamp(slot.loss_percent(), 0.0, 100.0));
  }
  reported_ms_ = received_ms;
  ++rounds_;
  dropped_total_ += u.dropped;
  return u;
}

const v1::PeerResult* PopHealth::peer(const std::string& pop) const {
  auto it = peers_.find(pop);
  return it == peers_.end() ? nullptr : &it->second;
}

const v1::ProbeResult* PopHealth::find(const std::string& accelerator, const std::string& listener,
                                       const std::string& group, const std::string& address) const {
  auto it = results_.find(Key{accelerator, listener, group, address});
  return it == results_.end() ? nullptr : &it->second;
}

}  // namespace onramp::ctl
