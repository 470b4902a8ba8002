// The decapsulation program in the kernel: loads the embedded BPF object,
// fills its allow lists and GUE ports, attaches it to an interface's XDP hook
// (replacing one an earlier, crashed onramp-decap left behind), detaches it,
// and reads its counters -- its own, or those of the instance already
// attached to an interface.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/decap/decap_counters.h"
#include "dataplane/decap/prefix.h"

struct bpf_object;
struct bpf_program;

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
std::string query_attached(int ifindex, AttachedProgram& out);
const char* mode_name(uint32_t mode_flag);

// Sums the per-CPU counters of the onramp-decap program attached to
// `ifindex`, whichever process attached it.
std::string read_attached_counters(int ifindex, Counters& out);

class DecapProgram {
 public:
  // Opens and loads (verifies) the embedded object. Error message or "".
  static std::string load(std::unique_ptr<DecapProgram>& out);
  ~DecapProgram();
  DecapProgram(const DecapProgram&) = delete;
  DecapProgram& operator=(const DecapProgram&) = delete;

  std::string configure(const std::vector<Prefix>& allow, const std::vector<uint16_t>& gue_ports);
  // Attaches to `ifindex`. `note` tells what happened beyond the plain
  // attach (a leftover replaced); `mode_used` is "native" or "generic".
  std::string attach(int ifindex, AttachMode mode, std::string& mode_used, std::string& note);
  // Detaches, unless the interface runs another program by now.
  std::string detach();
  std::string read_counters(Counters& out) const;
  // The loaded program (for BPF_PROG_TEST_RUN in tests).
  int prog_fd() const;

 private:
  DecapProgram() = default;
  bpf_object* obj_ = nullptr;
  bpf_program* prog_ = nullptr;
  int ifindex_ = 0;
  uint32_t mode_flag_ = 0;
};

}  // namespace onramp::decap
