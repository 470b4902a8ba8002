// onramp-decap's --port-override parser and the set check: what they accept,
// and the message for what they refuse.
#include "dataplane/decap/port_override.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

namespace onramp::decap {
namespace {

std::vector<PortOverride> parsed(std::string_view text) {
  auto p = parse_port_override(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.error();
  return p.ok() ? *p : std::vector<PortOverride>{};
}

TEST(DecapPortOverride, ParsesIpv4AndBracketedIpv6WithAndWithoutProtocol) {
  auto o = parsed("203.0.113.10:443=8443/tcp");
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].vip, *IpAddress::parse("203.0.113.10"));
  EXPECT_EQ(o[0].listener_port, 443);
  EXPECT_EQ(o[0].endpoint_port, 8443);
  EXPECT_EQ(o[0].protocol, IPPROTO_TCP);
  EXPECT_EQ(to_string(o[0]), "203.0.113.10:443=8443/tcp");

  o = parsed("[2001:db8::10]:53=5353/udp");
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(o[0].protocol, IPPROTO_UDP);
  EXPECT_EQ(to_string(o[0]), "[2001:db8::10]:53=5353/udp");

  // No protocol: TCP and UDP alike.
  o = parsed("203.0.113.10:8080=9090");
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].protocol, IPPROTO_TCP);
  EXPECT_EQ(o[1].protocol, IPPROTO_UDP);
}

TEST(DecapPortOverride, RefusesWithAMessageThatQuotesTheInput) {
  EXPECT_EQ(parse_port_override("203.0.113.10:443").error(),
            "\"203.0.113.10:443\": expected VIP:LISTENER_PORT=ENDPOINT_PORT[/tcp|/udp], e.g. "
            "203.0.113.10:443=8443 or [2001:db8::10]:443=8443/tcp");
  EXPECT_EQ(parse_port_override("2001:db8::10:443=8443").error(),
            "\"2001:db8::10:443=8443\": expected VIP:LISTENER_PORT=ENDPOINT_PORT[/tcp|/udp], "
            "e.g. 203.0.113.10:443=8443 or [2001:db8::10]:443=8443/tcp (an IPv6 VIP goes in "
            "brackets)");
  EXPECT_EQ(parse_port_override("203.0.113.10:443=8443/sctp").error(),
            "\"203.0.113.10:443=8443/sctp\": protocol must be tcp or udp");
  EXPECT_EQ(parse_port_override("vip:443=8443").error(),
            "\"vip:443=8443\": \"vip\" is not an IP address");
  EXPECT_EQ(parse_port_override("[203.0.113.10]:443=8443").error(),
            "\"[203.0.113.10]:443=8443\": only an IPv6 VIP goes in brackets");
  EXPECT_EQ(parse_port_override("203.0.113.10:0=8443").error(),
            "\"203.0.113.10:0=8443\": listener port must be 1..65535");
  EXPECT_EQ(parse_port_override("203.0.113.10:443=65536").error(),
            "\"203.0.113.10:443=65536\": endpoint port must be 1..65535");
  EXPECT_NE(parse_port_override("203.0.113.10:443=8443x").error(), "");
}

TEST(DecapPortOverride, RefusesASetTheRepliesCouldNotUndo) {
  auto set = [](std::initializer_list<const char*> texts) {
    std::vector<PortOverride> all;
    for (const char* t : texts) {
      auto p = parse_port_override(t);
      all.insert(all.end(), p->begin(), p->end());
    }
    return check_port_overrides(all);
  };
  EXPECT_TRUE(set({"203.0.113.10:443=8443", "203.0.113.10:80=8080", "203.0.113.11:443=8443",
                   "203.0.113.10:443=8443"})
                  .ok());
  EXPECT_TRUE(set({"203.0.113.10:53=5353/udp", "203.0.113.10:80=5353/tcp"}).ok());
  EXPECT_EQ(set({"203.0.113.10:443=8443/tcp", "203.0.113.10:443=9443/tcp"}).message(),
            "--port-override 203.0.113.10:443=9443/tcp and 203.0.113.10:443=8443/tcp map the "
            "same listener port twice");
  EXPECT_EQ(set({"203.0.113.10:443=8443", "203.0.113.10:4443=8443/udp"}).message(),
            "--port-override 203.0.113.10:4443=8443/udp and 203.0.113.10:443=8443/udp map two "
            "listener ports to one endpoint port: the replies could not tell which port the "
            "client connected to");
}

}  // namespace
}  // namespace onramp::decap
