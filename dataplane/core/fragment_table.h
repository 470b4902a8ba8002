// Fragment tracking, one table per lcore: the first fragment of a datagram
// picks its endpoint as a whole datagram of that flow would (it holds the
// ports) and records (src, dst, protocol, id) -> endpoint here; the later
// fragments, which carry no ports, follow that record. The table is
// direct-mapped with a fixed number of slots (bounded memory); a train lives
// until it is complete, its timeout passes, or another train takes its slot.
// It also keeps the byte ranges seen of each train, to refuse overlapping
// fragments.
#pragma once

#include <cstdint>
#include <memory>

#include "common/ip_address.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/parser.h"

namespace onramp::dp {

struct FragmentTrain {
  // Identity: IPv4 (src, dst, protocol, id); IPv6 (src, dst, id), RFC 8200
  // §4.5 (proto stays 0).
  IpAddress src;
  IpAddress dst;
  uint32_t id = 0;
  uint8_t proto = 0;
  bool live = false;
  bool poisoned = false;  // an overlap was seen: the rest is dropped too
  uint8_t n_ranges = 0;
  uint32_t expires_ms = 0;
  // Where the first fragment went.
  uint32_t listener_id = 0;
  uint16_t listener_index = 0;
  uint16_t endpoint_index = 0;
  uint32_t endpoint_id = 0;
  uint64_t flow_hash = 0;  // the flow's, for the same outer header (GUE port, label)
  uint32_t total = 0;      // fragmentable length once the last fragment came; 0 before
  // Byte ranges [begin, end) of the datagram seen so far, disjoint, sorted;
  // touching ranges merge, so an in-order train keeps one.
  static constexpr int kMaxRanges = 4;
  uint32_t begin[kMaxRanges];
  uint32_t end[kMaxRanges];
};

struct FragmentTableStats {
  uint64_t trains = 0;     // first fragments recorded
  uint64_t completed = 0;  // trains seen whole
  // Trains never completed: their slot was found past the timeout, or taken
  // by another train while still live.
  uint64_t timed_out = 0;
  uint64_t evicted = 0;
};

class FragmentTable {
 public:
  static constexpr uint32_t kSlots = 1024;  // power of two
  // How long a train waits for its next fragment. Fragments of one datagram
  // leave a client together; seconds cover any reordering on the path.
  static constexpr uint32_t kTimeoutMs = 5000;

  FragmentTable() : slots_(std::make_unique<FragmentTrain[]>(kSlots)) {}

  // The live train of this fragment, or nullptr.
  FragmentTrain* find(const ParsedPacket& p, uint32_t now_ms);
  // A new train for this (first) fragment, replacing whatever held its slot.
  FragmentTrain& insert(const ParsedPacket& p, uint32_t now_ms);
  // Records the fragment's bytes in its train and extends the train's life.
  // Returns false with `reason` when it overlaps bytes seen
  // (fragment_overlap; the train is poisoned) or leaves more holes than a
  // train tracks (fragment_scattered). A train seen whole is freed.
  bool add(FragmentTrain& t, const ParsedPacket& p, uint32_t now_ms, DropReason& reason);

  const FragmentTableStats& stats() const { return stats_; }

  // Bytes of fragment data the packet carries (after the IPv4 header / the
  // IPv6 fragment header).
  static uint32_t data_len(const ParsedPacket& p) {
    return p.l3_offset + p.ip_len - p.frag_data_offset;
  }

 private:
  FragmentTrain& slot(const ParsedPacket& p);
  std::unique_ptr<FragmentTrain[]> slots_;
  FragmentTableStats stats_;
};

}  // namespace onramp::dp
