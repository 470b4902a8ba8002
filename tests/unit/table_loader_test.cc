// Table files: good ones load with defaults filled in; bad ones are refused
// with a message that names the field.
#include "dataplane/config/table_loader.h"

#include <gtest/gtest.h>

namespace onramp::test {
namespace {

const char* kGood = R"(
pop: "FRA1"
tunnel_source { ipv4: "192.0.2.1" ipv6: "2001:db8::1" }
next_hop_mac: "02:00:00:00:00:fe"
listeners {
  name: "web"
  vips: "203.0.113.10"
  protocol: TCP
  port_ranges { first: 80 }
  port_ranges { first: 8000 last: 8099 }
  endpoints { address: "198.51.100.1" weight: 100 }
  endpoints { address: "2001:db8:100::2" weight: 0 mode: ENCAP_GUE unhealthy: true }
}
)";

std::string load(const std::string& text) { return dp::parse_table_text(text).error(); }

std::string with(const std::string& from, const std::string& to) {
  std::string s = kGood;
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

TEST(TableLoader, GoodTableLoadsWithDefaults) {
  auto loaded = dp::parse_table_text(kGood);
  ASSERT_EQ(loaded.error(), "");
  const TableSpec& spec = *loaded;
  ASSERT_EQ(spec.listeners.size(), 1u);
  const auto& l = spec.listeners[0];
  EXPECT_EQ(l.tcp_idle_s, 340u);
  EXPECT_EQ(l.udp_idle_s, 30u);
  ASSERT_EQ(l.port_ranges.size(), 2u);
  EXPECT_EQ(l.port_ranges[0].last, 80);  // last 0 means first
  EXPECT_EQ(l.port_ranges[1].last, 8099);
  EXPECT_EQ(spec.maglev_size, 65537u);
  EXPECT_EQ(spec.mtu, 1500);
  EXPECT_EQ(l.endpoints[1].mode, ForwardingMode::gue);
  EXPECT_FALSE(l.endpoints[1].healthy);
  EXPECT_EQ(l.endpoints[1].weight, 0u);
  EXPECT_EQ(l.endpoints[1].unhealthy_drain_s, 30u);  // unset: 30 s
}

TEST(TableLoader, UnhealthyDrainIsKeptEvenAtZeroAndBounded) {
  auto zero = dp::parse_table_text(with("unhealthy: true", "unhealthy: true unhealthy_drain_s: 0"));
  ASSERT_EQ(zero.error(), "");
  EXPECT_EQ(zero->listeners[0].endpoints[1].unhealthy_drain_s, 0u);
  auto most = dp::parse_table_text(with("unhealthy: true", "unhealthy_drain_s: 3600"));
  ASSERT_EQ(most.error(), "");
  EXPECT_EQ(most->listeners[0].endpoints[1].unhealthy_drain_s, 3600u);
  EXPECT_EQ(load(with("unhealthy: true", "unhealthy_drain_s: 3601")),
            "listeners[0].endpoints[1].unhealthy_drain_s: 3601 is outside 0..3600");
  TableSpec spec = *most;
  spec.listeners[0].endpoints[0].unhealthy_drain_s = 3601;
  EXPECT_EQ(validate_table_spec(spec).message(),
            "listeners[0].endpoints[0].unhealthy_drain_s: 3601 is outside 0..3600");
}

TEST(TableLoader, RelayFieldsLoad) {
  auto loaded = dp::parse_table_text(
      with("weight: 100 }", "weight: 100 relay: \"192.0.2.9\" }") +
      "relay_peers: \"192.0.2.7\" relay_peers: \"2001:db8::7\" relay_port: 6081\n");
  ASSERT_EQ(loaded.error(), "");
  EXPECT_EQ(loaded->listeners[0].endpoints[0].relay, IpAddress::parse("192.0.2.9"));
  EXPECT_FALSE(loaded->listeners[0].endpoints[1].relay);
  ASSERT_EQ(loaded->relay_peers.size(), 2u);
  EXPECT_EQ(loaded->relay_peers[1], *IpAddress::parse("2001:db8::7"));
  EXPECT_EQ(loaded->resolved_relay_port(), 6081);
  // Unset, the relay port is the table's GUE port.
  auto plain = dp::parse_table_text(with("pop: \"FRA1\"", "pop: \"FRA1\" gue_port: 7000"));
  ASSERT_EQ(plain.error(), "");
  EXPECT_EQ(plain->relay_port, 0);
  EXPECT_EQ(plain->resolved_relay_port(), 7000);
}

TEST(TableLoader, RelayFieldsAreChecked) {
  const std::string ep = "weight: 100 }";
  struct Case {
    std::string text;
    std::string error;
  };
  std::vector<Case> cases = {
      {with(ep, "weight: 100 relay: \"relay\" }"),
       "listeners[0].endpoints[0].relay: \"relay\" is not an IPv4 or IPv6 address"},
      {with(ep, "weight: 100 relay: \"2001:db8::9\" }"),
       "listeners[0].endpoints[0].relay: 2001:db8::9 is not of the family of endpoint "
       "198.51.100.1"},
      {with(ep, "weight: 100 relay: \"192.0.2.1\" }"),
       "listeners[0].endpoints[0].relay: 192.0.2.1 is this PoP's tunnel source"},
      {with(ep, "weight: 100 relay: \"203.0.113.10\" }"),
       "listeners[0].endpoints[0].relay: 203.0.113.10 is a VIP of this table"},
      {with(ep, "weight: 100 relay: \"224.0.0.1\" }"),
       "listeners[0].endpoints[0].relay: 224.0.0.1"},
      {std::string(kGood) + "relay_peers: \"192.0.2.300\"\n",
       "relay_peers[0]: \"192.0.2.300\" is not an IPv4 or IPv6 address"},
      {std::string(kGood) + "relay_peers: \"2001:db8::1\"\n",
       "relay_peers[0]: 2001:db8::1 is this PoP's tunnel source"},
      {std::string(kGood) + "relay_peers: \"192.0.2.7\" relay_peers: \"192.0.2.7\"\n",
       "relay_peers[1]: 192.0.2.7 is listed twice"},
      {std::string(kGood) + "relay_peers: \"0.0.0.0\"\n", "relay_peers[0]: 0.0.0.0"},
      {std::string(kGood) + "relay_port: 65536\n", "relay_port: 65536 is outside 1..65535"},
  };
  for (const auto& c : cases) {
    std::string err = load(c.text);
    EXPECT_NE(err.find(c.error), std::string::npos)
        << "want \"" << c.error << "\", got \"" << err << "\"";
  }
}

TEST(TableLoader, FlowLogSampleIsCarriedAndBounded) {
  auto off = dp::parse_table_text(kGood);
  ASSERT_EQ(off.error(), "");
  EXPECT_EQ(off->listeners[0].flow_log_sample_ppm, 0u);  // unset: no flow logs
  auto some =
      dp::parse_table_text(with("protocol: TCP", "protocol: TCP flow_log_sample_ppm: 10000"));
  ASSERT_EQ(some.error(), "");
  EXPECT_EQ(some->listeners[0].flow_log_sample_ppm, 10000u);
  EXPECT_EQ(load(with("protocol: TCP", "protocol: TCP flow_log_sample_ppm: 1000001")),
            "listeners[0].flow_log_sample_ppm: 1000001 is outside 0..1000000");
}

TEST(TableLoader, ErrorsNameTheField) {
  struct Case {
    std::string text;
    std::string error;
  };
  std::vector<Case> cases = {
      {with("\"198.51.100.1\"", "\"198.51.100.300\""),
       "listeners[0].endpoints[0].address: \"198.51.100.300\" is not an IPv4 or IPv6 address"},
      {with("vips: \"203.0.113.10\"", "vips: \"vip\""), "listeners[0].vips[0]:"},
      {with("02:00:00:00:00:fe", "02:00:00:00:00"), "next_hop_mac:"},
      {with("protocol: TCP", ""), "listeners[0].protocol: required"},
      {with("first: 8000 last: 8099", "first: 8000 last: 7999"), "listeners[0].port_ranges[1]:"},
      {with("first: 8000 last: 8099", "first: 70 last: 90"),
       "listeners[0].port_ranges[1]: 70..90 overlaps listeners[0].port_ranges[0]"},
      {with("weight: 100", "weight: 256"), "listeners[0].endpoints[0].weight: 256"},
      {with("ipv6: \"2001:db8::1\"", ""),
       "listeners[0].endpoints[1].address: IPv6 endpoint 2001:db8:100::2 needs tunnel_source.ipv6"},
      {with("name: \"web\"", ""), "listeners[0].name: required"},
      {with("pop: \"FRA1\"", "pop: \"FRA1\" maglev_table_size: 65536"), "maglev_table_size: 65536"},
      {with("pop: \"FRA1\"", "pop: \"FRA1\" mtu: 100"), "mtu: 100"},
      {with("pop: \"FRA1\"", "pop: \"FRA1\" bogus: 1"), "line 2:"},
      {with("endpoints { address: \"198.51.100.1\" weight: 100 }",
            "endpoints { address: \"198.51.100.1\" } endpoints { address: \"198.51.100.1\" }"),
       "listeners[0].endpoints[1].address: 198.51.100.1 is listed twice"},
  };
  for (const auto& c : cases) {
    std::string err = load(c.text);
    EXPECT_NE(err.find(c.error), std::string::npos)
        << "want \"" << c.error << "\", got \"" << err << "\"";
  }
}

// Hardening review, finding 5: hand-written tables took VIP 0.0.0.0 or
// multicast, endpoints 127.0.0.1, 255.255.255.255 or a VIP (re-encapsulated
// by the PoP again and again), and zero or broadcast next-hop MACs.
TEST(TableLoader, AddressesThatCannotBeVipsEndpointsOrNextHopsAreRefused) {
  struct Case {
    std::string from, to, error;
  };
  std::vector<Case> cases = {
      {"vips: \"203.0.113.10\"", "vips: \"0.0.0.0\"",
       "listeners[0].vips[0]: 0.0.0.0 is the unspecified address"},
      {"vips: \"203.0.113.10\"", "vips: \"239.1.2.3\"",
       "listeners[0].vips[0]: 239.1.2.3 is a multicast address"},
      {"\"198.51.100.1\"", "\"127.0.0.1\"",
       "listeners[0].endpoints[0].address: 127.0.0.1 is a loopback address"},
      {"\"198.51.100.1\"", "\"255.255.255.255\"",
       "listeners[0].endpoints[0].address: 255.255.255.255 is the broadcast address"},
      {"\"198.51.100.1\"", "\"169.254.1.1\"",
       "listeners[0].endpoints[0].address: 169.254.1.1 is a link-local address"},
      {"\"2001:db8:100::2\"", "\"fe80::1\"",
       "listeners[0].endpoints[1].address: fe80::1 is a link-local address"},
      {"\"198.51.100.1\"", "\"203.0.113.10\"",
       "listeners[0].endpoints[0].address: 203.0.113.10 is a VIP of this table"},
      {"\"198.51.100.1\"", "\"192.0.2.1\"",
       "listeners[0].endpoints[0].address: 192.0.2.1 is this PoP's tunnel source"},
      {"ipv4: \"192.0.2.1\"", "ipv4: \"127.0.0.1\"",
       "tunnel_source.ipv4: 127.0.0.1 is a loopback address"},
      {"02:00:00:00:00:fe", "00:00:00:00:00:00", "next_hop_mac: 00:00:00:00:00:00 is all zeros"},
      {"02:00:00:00:00:fe", "ff:ff:ff:ff:ff:ff",
       "next_hop_mac: ff:ff:ff:ff:ff:ff is a multicast or broadcast address"},
      {"02:00:00:00:00:fe", "01:00:5e:00:00:01",
       "next_hop_mac: 01:00:5e:00:00:01 is a multicast or broadcast address"},
  };
  for (const auto& c : cases) {
    std::string err = load(with(c.from, c.to));
    EXPECT_NE(err.find(c.error), std::string::npos)
        << "want \"" << c.error << "\", got \"" << err << "\"";
  }
}

TEST(TableLoader, DuplicateListenerNamesAndCrossListenerOverlap) {
  std::string two = std::string(kGood) + R"(
listeners { name: "web" vips: "203.0.113.11" protocol: UDP port_ranges { first: 53 } }
)";
  EXPECT_NE(load(two).find("listeners[1].name: \"web\" is used twice"), std::string::npos);
  std::string overlap = std::string(kGood) + R"(
listeners { name: "alt" vips: "203.0.113.10" protocol: TCP_UDP port_ranges { first: 8050 last: 9000 } }
)";
  EXPECT_NE(load(overlap).find("listeners[1].port_ranges[0]: 8050..9000 overlaps "
                               "listeners[0].port_ranges[1] on VIP 203.0.113.10 (TCP)"),
            std::string::npos)
      << load(overlap);
  // UDP on the same ports of the same VIP is a different listener space.
  std::string udp = std::string(kGood) + R"(
listeners { name: "dns" vips: "203.0.113.10" protocol: UDP port_ranges { first: 80 } }
)";
  EXPECT_EQ(load(udp), "");
}

TEST(TableLoader, MissingFileIsAClearError) {
  EXPECT_EQ(dp::load_table_file("/nonexistent/table.textproto").error(),
            "/nonexistent/table.textproto: No such file or directory");
}

}  // namespace
}  // namespace onramp::test
