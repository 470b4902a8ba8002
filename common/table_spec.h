// The forwarding table as plain values: what the proto loader produces and
// what ForwardingTable compiles. Keeps the core free of protobuf, so tests and
// fuzzers build tables with designated initialisers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"

namespace onramp {

enum class Protocol : uint8_t { tcp = 1, udp = 2, tcp_udp = 3 };
enum class Affinity : uint8_t { none = 0, source_ip = 1 };
enum class ForwardingMode : uint8_t { ipip = 0, gue = 1 };

constexpr uint32_t kDefaultTcpIdleS = 340;
constexpr uint32_t kDefaultUdpIdleS = 30;
constexpr uint16_t kDefaultGuePort = 6080;
constexpr uint16_t kDefaultMtu = 1500;
// Maglev lookup tables have a prime number of slots.
constexpr uint32_t kDefaultMaglevSize = 65537;
constexpr uint32_t kMinMaglevSize = 1021;
constexpr uint32_t kMaxMaglevSize = 1048573;
// How long an established TCP flow stays on an endpoint that turned
// unhealthy (still listed) before it moves, in seconds; 0 moves it at once.
constexpr uint32_t kDefaultUnhealthyDrainS = 30;
constexpr uint32_t kMaxUnhealthyDrainS = 3600;
// Flow logs sample a share of flows, in millionths: the accelerator's
// setting is 0.01 % .. 100 %; a listener's 0 means no flow logs.
constexpr uint32_t kMinFlowLogSamplePpm = 100;
constexpr uint32_t kMaxFlowLogSamplePpm = 1000000;

bool is_prime(uint32_t n);
// Bounds checked before anything is allocated: every listener with endpoints
// has a Maglev table of maglev_size 2-byte slots, and their sum is bounded;
// a listener needs at least kMaglevSlotsPerEndpoint slots per endpoint, or
// most of its endpoints would get no slot (and balance would be coarse).
constexpr uint64_t kMaxMaglevBytes = uint64_t{512} << 20;
constexpr uint32_t kMaglevSlotsPerEndpoint = 10;

struct PortRangeSpec {
  uint16_t first = 0;
  uint16_t last = 0;
};

struct EndpointSpec {
  IpAddress address;
  uint32_t weight = 128;  // 0..255; 0 drains
  ForwardingMode mode = ForwardingMode::ipip;
  uint16_t gue_port = 0;  // 0: the table's
  bool healthy = true;
  // 0..kMaxUnhealthyDrainS: while unhealthy, its established TCP flows stay
  // this long after it turned unhealthy; 0 moves them at once.
  uint32_t unhealthy_drain_s = kDefaultUnhealthyDrainS;
  std::string label;
  // The tunnel address of the PoP that relays this endpoint's packets, of
  // the endpoint's family; none: sent direct.
  std::optional<IpAddress> relay;
};

struct ListenerSpec {
  std::string name;
  std::vector<IpAddress> vips;
  Protocol protocol = Protocol::tcp;
  std::vector<PortRangeSpec> port_ranges;
  Affinity affinity = Affinity::none;
  uint32_t tcp_idle_s = kDefaultTcpIdleS;
  uint32_t udp_idle_s = kDefaultUdpIdleS;
  std::vector<EndpointSpec> endpoints;
  // Flow logs: the share of flows logged, in millionths, 0..1000000; 0: none.
  uint32_t flow_log_sample_ppm = 0;
};

struct TableSpec {
  uint64_t version = 0;
  std::string pop;
  std::optional<IpAddress> tunnel_source_v4;
  std::optional<IpAddress> tunnel_source_v6;
  MacAddress next_hop_mac{};
  std::vector<ListenerSpec> listeners;
  uint32_t maglev_size = kDefaultMaglevSize;
  uint16_t gue_port = kDefaultGuePort;
  uint16_t mtu = kDefaultMtu;
  // Tunnel addresses of the PoPs whose relayed packets this PoP forwards.
  std::vector<IpAddress> relay_peers;
  uint16_t relay_port = 0;  // 0: gue_port

  // The UDP port relayed packets go to and arrive on.
  uint16_t resolved_relay_port() const { return relay_port ? relay_port : gue_port; }
};

// A controller's table names each listener "<accelerator>/<listener>"
// ("web/http"); the two names back. A hand-written table's listener has no
// accelerator: {"", name}.
std::pair<std::string, std::string> split_listener_name(const std::string& name);

// Checks what a table needs to be forwardable: names unique, port ranges
// disjoint per (VIP, protocol), tunnel sources for every endpoint family,
// relays of the endpoint's family and not this PoP, limits. The error names the field
// ("listeners[1].port_ranges[0]: ...") in the proto's own field names.
Status validate_table_spec(const TableSpec& spec);

}  // namespace onramp
