// The packet core on plain buffers, for the unit tests: a table built from
// a spec, one frame through a PacketProcessor and what came out of it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/core/processor.h"
#include "tests/unit/packet_builder.h"

namespace onramp::test {

using dp::Action;
using dp::DropReason;
using dp::ForwardingTable;
using dp::PacketProcessor;

// The receiving port's MAC (the destination of every frame ether() builds).
inline constexpr MacAddress kPortMac = {0x02, 0x70, 0x63, 0x61, 0x70, 0x00};
// Room in front of a frame for the tunnel headers, as an mbuf has.
inline constexpr uint32_t kHeadroom = 128;

// `spec` checked and built; null (after a failed expectation) when it is
// not valid or does not build.
inline std::unique_ptr<dp::ForwardingTable> build_table(
    const TableSpec& spec, unsigned lcores = 1, const dp::ForwardingTable* previous = nullptr) {
  EXPECT_EQ(validate_table_spec(spec).message(), "");
  auto t = dp::ForwardingTable::build(spec, lcores, previous);
  EXPECT_TRUE(t.ok()) << t.error();
  return t.ok() ? std::move(*t) : nullptr;
}

struct Ran {
  dp::Action action;
  Bytes out;  // the frame as the core left it
};

// One frame through `proc` as a burst of its own.
inline Ran run_frame(dp::PacketProcessor& proc, dp::ForwardingTable& table, const Bytes& frame,
                     uint32_t now_ms = 0, dp::ExtraPackets* extra = nullptr) {
  std::vector<uint8_t> storage(kHeadroom + frame.size());
  std::copy(frame.begin(), frame.end(), storage.begin() + kHeadroom);
  dp::PacketBuf pkt{storage.data() + kHeadroom, static_cast<uint32_t>(frame.size()), kHeadroom};
  dp::Action a;
  proc.process_burst(table, &pkt, &a, 1, kPortMac, now_ms, extra);
  return {a, Bytes(pkt.data, pkt.data + pkt.len)};
}

// The endpoint an untagged encapsulated frame goes to: its outer IPv4 or
// IPv6 destination.
inline std::string outer_dst(const Bytes& out) {
  if (out[12] == 0x08 && out[13] == 0x00) return IpAddress::from_v4(&out[14 + 16]).to_string();
  return IpAddress::from_v6(&out[14 + 24]).to_string();
}

// The endpoint `frame` is forwarded to, "" when it is not forwarded.
inline std::string endpoint_of(dp::PacketProcessor& proc, dp::ForwardingTable& table,
                               const Bytes& frame, uint32_t now_ms = 0) {
  Ran r = run_frame(proc, table, frame, now_ms);
  return r.action == dp::Action::forward ? outer_dst(r.out) : "";
}

inline uint64_t drops(const dp::PacketProcessor& proc, dp::DropReason reason) {
  return proc.stats().drops[static_cast<int>(reason)].load();
}

}  // namespace onramp::test
