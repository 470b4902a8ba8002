// What one PoP's probes say about the endpoints it serves: the latest
// ProbeResult per (accelerator, listener, group, address), replaced whole by
// each ProbeReport (the agent sends its whole probe plan every time). The
// controller keeps one per connected PoP; health is per PoP, so an endpoint
// one PoP cannot reach is unhealthy from that PoP only. Beside them, the
// PoP's mesh probe results to the other PoPs, by peer.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "onramp/v1/admin.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::ctl {

class PopHealth {
 public:
  // What replace() found in a report.
  struct Update {
    bool verdict_changed = false;  // an endpoint's HealthState changed
    // An endpoint that had a verdict got the other one (healthy <->
    // unhealthy): a failover, never held back. A first verdict (from
    // UNKNOWN) is not a flip.
    bool verdict_flipped = false;
    uint32_t unknown = 0;  // results without a verdict yet
    uint32_t dropped = 0;  // results refused (a key field empty)
  };

  // Replaces the view with `report`, whole. Results without an accelerator,
  // listener, group or address are dropped and counted; a non-finite RTT
  // counts as not measured; of two results for one endpoint the later wins.
  Update replace(const v1::ProbeReport& report, int64_t received_ms);

  // The PoP's view from the views of its hosts (docs/routing.md "A PoP of
  // several servers"), the same whatever their order and equal to the one
  // view when there is one. Per endpoint: hosts without a verdict do not
  // vote; healthy when at least half of those with one say so; the RTT is
  // the lower median of the measured ones. Per peer PoP: the result of the
  // lower median RTT. A host that comes or goes moves a verdict only when
  // the hosts disagreed, and an RTT by the spread between hosts of one PoP.
  static PopHealth merged(const std::vector<const PopHealth*>& hosts);

  // The PoP's latest result for an endpoint, or null when it reported none.
  const v1::ProbeResult* find(const std::string& accelerator, const std::string& listener,
                              const std::string& group, const std::string& address) const;

  // The PoP's latest mesh probe result for the peer PoP `pop`, or null.
  const v1::PeerResult* peer(const std::string& pop) const;
  const std::map<std::string, v1::PeerResult>& peers() const { return peers_; }

  int64_t reported_ms() const { return reported_ms_; }
  // Reports received since the session started: one routing round each.
  uint64_t rounds() const { return rounds_; }
  uint64_t dropped_total() const { return dropped_total_; }
  size_t size() const { return results_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  std::map<Key, v1::ProbeResult> results_;
  std::map<std::string, v1::PeerResult> peers_;  // by peer PoP id
  int64_t reported_ms_ = 0;
  uint64_t rounds_ = 0;
  uint64_t dropped_total_ = 0;
};

// The state an endpoint is in as a PoP sees it; UNKNOWN without a result or
// before the first verdict.
v1::HealthState health_state(const v1::ProbeResult* result);

// Whether routing treats the endpoint as healthy: unknown counts as healthy,
// so endpoints take traffic before the first probes come in.
bool routable(const v1::ProbeResult* result);

}  // namespace onramp::ctl
