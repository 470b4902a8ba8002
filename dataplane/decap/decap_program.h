// The decapsulation program in the kernel: loads the BPF object embedded in
// its libbpf skeleton (decap.skel.h),
// fills its allow lists, GUE ports and port overrides, attaches it to an
// interface's XDP hook (replacing one an earlier, crashed onramp-decap left
// behind) and, for port overrides, the reply program to an interface's TC
// egress hook; detaches both, and reads the counters -- its own, or those of
// the instance already attached to an interface.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/ip_address.h"
#include "common/status.h"
#include "dataplane/decap/decap_counters.h"
#include "dataplane/decap/port_override.h"
#include "dataplane/decap/prefix.h"

struct decap_bpf;  // the skeleton (decap.skel.h)

namespace onramp::decap {

enum class AttachMode { automatic, native, generic };

using Counters = std::array<uint64_t, ONRAMP_DECAP_COUNTER_COUNT>;

// "decap_ipip_v4=N decap_ipip_v6=N ... not_encapsulated=N"
std::string format_counters(const Counters& c);

// The XDP program an interface runs, as the kernel reports it (id 0: none).
struct AttachedProgram {
  uint32_t id = 0;
  std::string name;
  uint32_t mode_flag = 0;  // XDP_FLAGS_DRV_MODE, _SKB_MODE or _HW_MODE
};
Result<AttachedProgram> query_attached(int ifindex);
const char* mode_name(uint32_t mode_flag);

// Sums the per-CPU counters of the onramp-decap program attached to
// `ifindex`, whichever process attached it.
Result<Counters> read_attached_counters(int ifindex);

// Every address of every interface of this host (its network namespace).
Result<std::vector<IpAddress>> host_addresses();

// What an attach did.
struct Attachment {
  std::string mode;  // "native" or "generic"
  // What happened beyond the plain attach (a leftover replaced); empty if
  // nothing.
  std::string note;
};

class DecapProgram {
 public:
  // Opens and loads (verifies) the embedded object.
  static Result<std::unique_ptr<DecapProgram>> load();
  ~DecapProgram();
  DecapProgram(const DecapProgram&) = delete;
  DecapProgram& operator=(const DecapProgram&) = delete;

  Status configure(const std::vector<Prefix>& allow, const std::vector<uint16_t>& gue_ports);
  // This host's addresses, the only outer destinations unwrapped: the map
  // is made to hold exactly these (added and removed as they change).
  Status set_local_addresses(const std::vector<IpAddress>& addresses);
  // Fills the port override maps (checked with check_port_overrides).
  Status set_port_overrides(const std::vector<PortOverride>& overrides);
  // Attaches to `ifindex`.
  Result<Attachment> attach(int ifindex, AttachMode mode);
  // Attaches the reply program (source ports back to listener ports) to
  // `ifindex`'s TC egress hook, creating its clsact qdisc if there is none,
  // replacing a leftover of an earlier onramp-decap at our handle.
  Result<Attachment> attach_reply(int ifindex);
  // Detaches, unless the interface runs another program by now.
  Status detach();
  // Removes the reply program, and the clsact qdisc if attach_reply made it.
  Status detach_reply();
  // Without port overrides: removes a reply program an earlier onramp-decap
  // (killed, with overrides) left on `ifindex`, which would go on rewriting.
  // Returns what it did ("" if nothing).
  Result<std::string> remove_leftover_reply(int ifindex);
  Result<Counters> read_counters() const;
  // The loaded programs (for BPF_PROG_TEST_RUN in tests).
  int prog_fd() const;
  int reply_prog_fd() const;

 private:
  DecapProgram() = default;
  decap_bpf* skel_ = nullptr;
  int ifindex_ = 0;
  uint32_t mode_flag_ = 0;
  int reply_ifindex_ = 0;
  bool made_clsact_ = false;
};

}  // namespace onramp::decap
