// What the XDP steering program of a net_af_xdp port sends to the dataplane,
// derived from the forwarding table, and the control logic that keeps the
// program's maps equal to the table in force across table swaps. The maps
// are behind an interface (SteeringMaps): the BPF one writes the kernel's
// (bpf_steering_maps.h), tests use a fake.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"
#include "common/table_spec.h"

namespace onramp::dp {

// One entry of the steering program's maps.
struct SteeredDestination {
  IpAddress address;
  // 0: every packet to the address, fragments included (a VIP). Otherwise
  // UDP to the address on this port only (relayed GUE to the tunnel
  // address); the address's other traffic stays the kernel's.
  uint16_t udp_port = 0;
  friend auto operator<=>(const SteeredDestination&, const SteeredDestination&) = default;
  std::string to_string() const;
};
using SteeringSet = std::set<SteeredDestination>;

// Every VIP of `spec`'s listeners, and, when the table makes this PoP a
// relay (relay_peers), UDP to its tunnel addresses on the relay port.
SteeringSet steering_set(const TableSpec& spec);

// The maps of one port's steering program.
class SteeringMaps {
 public:
  virtual ~SteeringMaps() = default;
  virtual Status insert(const SteeredDestination& d) = 0;
  virtual Status erase(const SteeredDestination& d) = 0;
};

struct SteeringCounters {
  uint64_t ports = 0;
  uint64_t destinations = 0;  // entries in each port's maps
  uint64_t map_updates = 0;   // inserts and erases done, over all ports
  uint64_t map_errors = 0;    // inserts and erases the kernel refused
};

// Keeps the maps of every steering port equal to the table in force. A table
// swap is bracketed: before_swap adds what the next table steers, so its new
// VIPs reach the dataplane by the time the table that forwards them is in
// force; after_swap, once no worker uses the old table, removes what only
// the old one steered. Calls are serialised by the caller (TablePublisher
// applies one table at a time).
class VipSteering {
 public:
  explicit VipSteering(std::vector<std::unique_ptr<SteeringMaps>> ports);

  void before_swap(const SteeringSet& next);
  void after_swap(const SteeringSet& next);
  SteeringCounters counters() const;

 private:
  void update(const SteeredDestination& d, bool insert);

  std::vector<std::unique_ptr<SteeringMaps>> ports_;
  // What the maps hold: the old and the next table's union between the two
  // calls. An entry a port refused to take is left out (retried at the next
  // swap); one a port refused to drop stays in (likewise).
  SteeringSet installed_;
  // Read by the stats thread while a swap writes them.
  std::atomic<uint64_t> destinations_{0};
  std::atomic<uint64_t> updates_{0};
  std::atomic<uint64_t> errors_{0};
};

// The EAL arguments with `,xdp_prog=program` added to every net_af_xdp
// --vdev that names no program of its own; `changed` says whether any did.
// An empty `program` leaves them as they are (the PMD's own program, which
// sends every packet on the queue to the dataplane).
std::vector<std::string> with_xdp_program(const std::vector<std::string>& eal_args,
                                          std::string_view program, bool* changed = nullptr);

}  // namespace onramp::dp
