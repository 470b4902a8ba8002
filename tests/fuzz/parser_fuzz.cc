// libFuzzer target: the packet parser on arbitrary bytes. Besides "no crash,
// no out-of-bounds read" (ASan), it checks the parser's promises: every
// offset it returns lies inside the frame and in order.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dataplane/core/parser.h"

using onramp::dp::DropReason;
using onramp::dp::ParsedPacket;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy of exactly `size` bytes, so ASan catches any read past it.
  std::vector<uint8_t> frame(data, data + size);
  ParsedPacket p;
  DropReason reason;
  if (!onramp::dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), p, reason)) {
    if (reason >= DropReason::count) std::abort();
    return 0;
  }
  if (p.family != 4 && p.family != 6) std::abort();
  if (p.l3_offset < 14 || p.l3_offset > size) std::abort();
  if (p.l3_offset + p.ip_len > size) std::abort();
  if (p.l4_offset < p.l3_offset || p.l4_offset > p.l3_offset + p.ip_len) std::abort();
  if (p.l2_ethertype_offset + 2 != p.l3_offset) std::abort();
  return 0;
}
