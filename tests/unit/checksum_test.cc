// The one's-complement sum the encapsulation uses for IPv4 headers and UDP
// over IPv6: the word-at-a-time version must agree with the definition
// (RFC 1071: big-endian 16-bit words, an odd last byte padded with zero) for
// every length and alignment.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "dataplane/core/net_headers.h"

namespace onramp::test {
namespace {

uint32_t reference_sum(const uint8_t* p, uint32_t len, uint32_t sum) {
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += dp::load_be16(p + i);
  if (len % 2) sum += uint32_t{p[len - 1]} << 8;
  return sum;
}

TEST(Checksum, AgreesWithTheDefinitionForEveryLengthAndAlignment) {
  std::mt19937 rng(5);
  std::vector<uint8_t> buf(2100);
  for (int round = 0; round < 20; ++round) {
    for (auto& b : buf) b = static_cast<uint8_t>(round == 0 ? 0xff : rng());
    for (uint32_t off = 0; off < 8; ++off)
      for (uint32_t len = 0; len <= 2048; len += (len < 80 ? 1 : 61)) {
        uint32_t seed = round * 7919u;
        uint32_t got = dp::checksum_partial(buf.data() + off, len, seed);
        uint32_t want = reference_sum(buf.data() + off, len, seed);
        ASSERT_EQ(dp::checksum_fold(got), dp::checksum_fold(want))
            << "round " << round << " offset " << off << " length " << len;
      }
  }
}

}  // namespace
}  // namespace onramp::test
