// Learns the next hop's MAC from the kernel's side of the exception path:
// the kernel's default route on the exception interface names the router,
// its neighbour table the router's MAC. Asked over rtnetlink every 100 ms
// from the main lcore, so a changed MAC (a new router, a VRRP failover with
// its gratuitous ARP) is in force well within a second.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/ip_address.h"
#include "common/status.h"
#include "common/table_spec.h"
#include "dataplane/core/next_hop.h"

namespace onramp::dp {

class NeighbourWatch {
 public:
  static constexpr uint64_t kPeriodMs = 100;
  // While unresolved, the kernel is asked to resolve the next hop (an
  // RTM_NEWNEIGH with NTF_USE, as `ip neigh replace ... use`) this often.
  static constexpr uint64_t kNudgeMs = 1000;

  // Watches the kernel interface with this index (the exception interface).
  static Result<std::unique_ptr<NeighbourWatch>> open(int ifindex);
  ~NeighbourWatch();
  NeighbourWatch(const NeighbourWatch&) = delete;
  NeighbourWatch& operator=(const NeighbourWatch&) = delete;

  // Looks again when kPeriodMs have passed since the last look.
  void poll(uint64_t now_ms);

  // What the workers read.
  const LearnedNextHop& learned() const { return learned_; }

  struct View {
    std::optional<IpAddress> address;  // no default route on the interface: none
    std::optional<MacAddress> mac;     // unresolved: none
    uint64_t changes = 0;
  };
  View view() const;

 private:
  explicit NeighbourWatch(int fd, int ifindex) : fd_(fd), ifindex_(ifindex) {}
  std::optional<IpAddress> default_gateway();
  std::optional<MacAddress> neighbour_mac(const IpAddress& address);
  void nudge(const IpAddress& address);

  int fd_;
  int ifindex_;
  uint32_t seq_ = 0;
  uint64_t next_look_ms_ = 0;
  uint64_t next_nudge_ms_ = 0;
  LearnedNextHop learned_;
  mutable std::mutex mu_;
  View view_;  // guarded by mu_
};

// A table without next_hop_mac is for a dataplane that learns it: one that
// does not refuses it with this error.
Status check_next_hop_given(const TableSpec& spec);

}  // namespace onramp::dp
