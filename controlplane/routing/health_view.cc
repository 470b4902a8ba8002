#include "controlplane/routing/health_view.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

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

namespace {

// The lower median of `values` (empty: -1, not measured).
double lower_median(std::vector<double> values) {
  if (values.empty()) return -1;
  std::sort(values.begin(), values.end());
  return values[(values.size() - 1) / 2];
}

}  // namespace

PopHealth PopHealth::merged(const std::vector<const PopHealth*>& hosts) {
  PopHealth out;
  if (hosts.size() == 1) return *hosts.front();
  std::map<Key, std::vector<const v1::ProbeResult*>> by_endpoint;
  std::map<std::string, std::vector<const v1::PeerResult*>> by_peer;
  for (const PopHealth* h : hosts) {
    for (const auto& [key, r] : h->results_) by_endpoint[key].push_back(&r);
    for (const auto& [pop, r] : h->peers_) by_peer[pop].push_back(&r);
    out.reported_ms_ = std::max(out.reported_ms_, h->reported_ms_);
    out.rounds_ = std::max(out.rounds_, h->rounds_);
    out.dropped_total_ += h->dropped_total_;
  }
  for (const auto& [key, results] : by_endpoint) {
    size_t known = 0, healthy = 0;
    for (const v1::ProbeResult* r : results)
      if (r->known()) {
        ++known;
        if (r->healthy()) ++healthy;
      }
    const bool verdict = 2 * healthy >= known;
    // The result that carries the verdict: among those that agree with it,
    // the one of the lowest (RTT, error) so that the order of hosts does
    // not matter; without any verdict, the same among all.
    const v1::ProbeResult* pick = nullptr;
    std::vector<double> rtts, last_rtts;
    for (const v1::ProbeResult* r : results) {
      if (r->rtt_ms() >= 0) rtts.push_back(r->rtt_ms());
      if (r->last_rtt_ms() >= 0) last_rtts.push_back(r->last_rtt_ms());
      if (known && (!r->known() || r->healthy() != verdict)) continue;
      auto order = [](const v1::ProbeResult* x) {
        return std::make_tuple(x->rtt_ms(), std::cref(x->last_error()), x->last_change_ms());
      };
      if (!pick || order(r) < order(pick)) pick = r;
    }
    v1::ProbeResult& slot = out.results_[key];
    slot = *pick;
    slot.set_rtt_ms(lower_median(rtts));
    slot.set_last_rtt_ms(lower_median(last_rtts));
  }
  for (const auto& [pop, results] : by_peer) {
    std::vector<const v1::PeerResult*> sorted = results;
    // Unmeasured (negative) last, then by RTT, then by address.
    std::sort(sorted.begin(), sorted.end(), [](const v1::PeerResult* a, const v1::PeerResult* b) {
      return std::make_tuple(a->rtt_ms() < 0, a->rtt_ms(), a->address()) <
             std::make_tuple(b->rtt_ms() < 0, b->rtt_ms(), b->address());
    });
    size_t measured = 0;
    for (const v1::PeerResult* r : sorted) measured += r->rtt_ms() >= 0;
    out.peers_[pop] = *sorted[measured ? (measured - 1) / 2 : 0];
  }
  return out;
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
