// Anycast announcement through BIRD (docs/bgp.md): the agent writes the VIPs
// it announces into an include file of static protocols named onramp_*, and
// asks BIRD to reconfigure over its control socket when that set changes.
// Which VIPs to announce is decided by vips_to_announce from what the
// dataplane runs; the agent exiting leaves BIRD as it is (static stability).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp::agent {

// The VIPs a PoP may announce: those of every listener of `table` with at
// least one endpoint of weight > 0, canonical text, sorted, unique. None
// when the dataplane is not healthy or runs no table of ours (nullptr).
std::vector<std::string> vips_to_announce(const v1::ForwardingTable* table, bool dataplane_healthy);

// The include file for `vips`: static protocol onramp_v4 with a /32
// blackhole route per IPv4 VIP, onramp_v6 with a /128 per IPv6 VIP; a
// comment-only file when there is nothing to announce.
std::string render_bird_config(const std::vector<std::string>& vips);

// Asks the BIRD listening on `socket_path` to re-read its configuration
// ("configure" in its control protocol); the error says why it did not.
Status bird_configure(const std::string& socket_path, std::chrono::milliseconds timeout);

struct BirdOptions {
  std::string config_path;  // the include file; the operator's bird.conf includes it
  std::string socket_path = "/run/bird/bird.ctl";
  std::chrono::milliseconds timeout{3000};
};

class BirdAnnouncer {
 public:
  explicit BirdAnnouncer(BirdOptions options);

  // Brings BIRD to announce exactly `vips`: writes the include file
  // atomically and reconfigures BIRD when the set differs from what BIRD
  // last accepted (always on the first call). A failure is logged and tried
  // again on the next call. True when BIRD announces `vips` now.
  bool update(const std::vector<std::string>& vips);

  // True when BIRD last accepted a non-empty set.
  bool announced() const;
  // What BIRD last accepted; nullopt before the first success.
  std::optional<std::vector<std::string>> accepted() const;

 private:
  const BirdOptions options_;
  mutable std::mutex mu_;
  std::optional<std::vector<std::string>> accepted_;
  std::optional<std::vector<std::string>> written_;
  std::string last_error_;  // logged once until it changes
};

}  // namespace onramp::agent
