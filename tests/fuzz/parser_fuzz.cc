// libFuzzer target: the packet parser on arbitrary bytes. Besides "no crash,
// no out-of-bounds read" (ASan), it checks the parser's promises: every
// offset it returns lies inside the frame and in order; and that the inline
// fast path (parse_packet_fast) agrees with it.
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
  ParsedPacket p, q;
  DropReason reason, fast_reason;
  bool ok = onramp::dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), p, reason);
  bool fast_ok = onramp::dp::parse_packet_fast(frame.data(), static_cast<uint32_t>(frame.size()), q,
                                               fast_reason);
  if (ok != fast_ok) std::abort();
  if (!ok) {
    if (reason >= DropReason::count || fast_reason != reason) std::abort();
    return 0;
  }
  if (!(p.src == q.src) || !(p.dst == q.dst) || p.l3_offset != q.l3_offset ||
      p.l4_offset != q.l4_offset || p.ip_len != q.ip_len || p.family != q.family ||
      p.l4_proto != q.l4_proto || p.fragment != q.fragment ||
      p.l2_ethertype_offset != q.l2_ethertype_offset)
    std::abort();
  if (!p.fragment && (p.l4_proto == 6 || p.l4_proto == 17) &&
      (p.src_port != q.src_port || p.dst_port != q.dst_port))
    std::abort();
  if (p.family != 4 && p.family != 6) std::abort();
  if (p.l3_offset < 14 || p.l3_offset > size) std::abort();
  if (p.l3_offset + p.ip_len > size) std::abort();
  if (p.l4_offset < p.l3_offset || p.l4_offset > p.l3_offset + p.ip_len) std::abort();
  if (p.l2_ethertype_offset + 2 != p.l3_offset) std::abort();
  return 0;
}
