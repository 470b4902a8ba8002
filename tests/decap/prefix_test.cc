// onramp-decap's --allow parser: what it accepts, and the message for what it
// refuses.
#include "dataplane/decap/prefix.h"

#include <gtest/gtest.h>

namespace onramp::decap {
namespace {

Prefix parsed(std::string_view text) {
  auto p = parse_prefix(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.error();
  return p.ok() ? *p : Prefix{};
}

TEST(DecapPrefix, ParsesIpv4AndIpv6Prefixes) {
  Prefix p = parsed("198.51.100.0/24");
  EXPECT_EQ(p.family, 4);
  EXPECT_EQ(p.length, 24);
  EXPECT_EQ(p.addr[0], 198);
  EXPECT_EQ(p.addr[2], 100);
  EXPECT_EQ(to_string(p), "198.51.100.0/24");

  p = parsed("2001:db8:f1::/48");
  EXPECT_EQ(p.family, 6);
  EXPECT_EQ(p.length, 48);
  EXPECT_EQ(p.addr[0], 0x20);
  EXPECT_EQ(p.addr[5], 0xf1);
  EXPECT_EQ(to_string(p), "2001:db8:f1::/48");
}

TEST(DecapPrefix, BareAddressIsOneHost) {
  EXPECT_EQ(parsed("198.51.100.7").length, 32);
  EXPECT_EQ(parsed("2001:db8::1").length, 128);
}

TEST(DecapPrefix, EdgeLengths) {
  EXPECT_EQ(parsed("0.0.0.0/0").length, 0);
  EXPECT_EQ(parsed("::/0").length, 0);
  EXPECT_EQ(parsed("198.51.100.128/25").length, 25);
  EXPECT_EQ(parsed("2001:db8::8000/113").length, 113);
}

TEST(DecapPrefix, HostBitsAreRefusedWithTheRightPrefix) {
  EXPECT_EQ(parse_prefix("198.51.100.1/24").error(),
            "\"198.51.100.1/24\" has host bits set; the prefix is 198.51.100.0/24");
  EXPECT_EQ(parse_prefix("198.51.100.129/25").error(),
            "\"198.51.100.129/25\" has host bits set; the prefix is 198.51.100.128/25");
  EXPECT_EQ(parse_prefix("2001:db8::1/64").error(),
            "\"2001:db8::1/64\" has host bits set; the prefix is 2001:db8::/64");
}

TEST(DecapPrefix, RefusesWhatIsNotAPrefix) {
  const std::string not_prefix =
      " is not an IPv4 or IPv6 prefix (e.g. 198.51.100.0/24, 2001:db8::/32)";
  EXPECT_EQ(parse_prefix("").error(), "\"\"" + not_prefix);
  EXPECT_EQ(parse_prefix("pop.example").error(), "\"pop.example\"" + not_prefix);
  EXPECT_EQ(parse_prefix("198.51.100/24").error(), "\"198.51.100/24\"" + not_prefix);
  EXPECT_EQ(parse_prefix("198.51.100.0/33").error(),
            "\"198.51.100.0/33\": prefix length must be 0..32");
  EXPECT_EQ(parse_prefix("2001:db8::/129").error(),
            "\"2001:db8::/129\": prefix length must be 0..128");
  EXPECT_EQ(parse_prefix("198.51.100.0/").error(),
            "\"198.51.100.0/\": prefix length must be 0..32");
  EXPECT_EQ(parse_prefix("198.51.100.0/2x").error(),
            "\"198.51.100.0/2x\": prefix length must be 0..32");
  EXPECT_EQ(parse_prefix("198.51.100.0/-1").error(),
            "\"198.51.100.0/-1\": prefix length must be 0..32");
}

}  // namespace
}  // namespace onramp::decap
