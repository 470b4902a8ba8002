// Controller replicas: the list as operators write it (names, IPv6,
// mistakes), and the order and pace in which the agent moves between them,
// on a fake clock and a fake resolver.
#include "controlplane/agent/replica_rotation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace onramp::agent {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<cp::ControllerAddress> parse(const std::string& text) {
  auto list = cp::parse_controller_list(text);
  EXPECT_TRUE(list.ok()) << list.error();
  return list.ok() ? *list : std::vector<cp::ControllerAddress>{};
}

std::string parse_error(const std::string& text) {
  auto list = cp::parse_controller_list(text);
  return list.ok() ? "(accepted)" : list.error();
}

TEST(ControllerList, OneOrSeveralEntriesNamesAndIpv6) {
  auto one = parse("127.0.0.1:7444");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].host, "127.0.0.1");
  EXPECT_EQ(one[0].port, "7444");

  auto three = parse("ctl-a.example.net:7444, [2001:db8::7]:7444 ,[::1]:8444");
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three[0].text(), "ctl-a.example.net:7444");
  EXPECT_EQ(three[1].host, "2001:db8::7");
  EXPECT_EQ(three[1].text(), "[2001:db8::7]:7444");
  EXPECT_EQ(three[2].text(), "[::1]:8444");
}

TEST(ControllerList, MistakesAreNamed) {
  EXPECT_THAT(parse_error(""), HasSubstr("no controller address given"));
  EXPECT_THAT(parse_error("  "), HasSubstr("no controller address given"));
  EXPECT_THAT(parse_error("a:1,,b:2"), HasSubstr("an empty entry"));
  EXPECT_THAT(parse_error("a:1,"), HasSubstr("an empty entry"));
  EXPECT_THAT(parse_error("ctl.example.net"), HasSubstr("\"ctl.example.net\": no port"));
  EXPECT_THAT(parse_error("a:0"), HasSubstr("1..65535"));
  EXPECT_THAT(parse_error("a:70000"), HasSubstr("1..65535"));
  EXPECT_THAT(parse_error("a:74x"), HasSubstr("1..65535"));
  EXPECT_THAT(parse_error(":7444"), HasSubstr("no host"));
  EXPECT_THAT(parse_error("::1:7444"), HasSubstr("takes brackets"));
  EXPECT_THAT(parse_error("[::1]"), HasSubstr("no port"));
  EXPECT_THAT(parse_error("[::1:7444"), HasSubstr("no closing ]"));
  EXPECT_THAT(parse_error("[ctl]:7444"), HasSubstr("not an IPv6 address"));
  EXPECT_THAT(parse_error("a:7444,b:7444,a:7444"), HasSubstr("\"a:7444\": given twice"));
  EXPECT_THAT(parse_error("[::1]:7444,[0::1]:7444"), HasSubstr("accepted"))
      << "two spellings of one address are told apart after resolution, not here";
}

class FakeDns {
 public:
  cp::Resolver resolver() {
    return [this](const std::string& host) {
      ++lookups;
      auto it = records.find(host);
      return it == records.end() ? std::vector<std::string>{} : it->second;
    };
  }
  std::map<std::string, std::vector<std::string>> records;
  int lookups = 0;
};

TEST(ControllerList, NamesBecomeEachOfTheirAddressesOnce) {
  FakeDns dns;
  dns.records["ctl.example.net"] = {"192.0.2.1", "2001:db8::1", "192.0.2.2"};
  auto replicas = cp::resolve_replicas(
      parse("ctl.example.net:7444,192.0.2.2:7444,gone.example.net:7444"), dns.resolver());
  ASSERT_EQ(replicas.size(), 4u);
  EXPECT_EQ(replicas[0].target, "ipv4:192.0.2.1:7444");
  EXPECT_EQ(replicas[0].authority, "ctl.example.net:7444");
  EXPECT_EQ(replicas[0].server_name, "ctl.example.net");
  EXPECT_EQ(replicas[1].target, "ipv6:[2001:db8::1]:7444");
  EXPECT_EQ(replicas[2].target, "ipv4:192.0.2.2:7444");
  // A name that does not resolve stays, for gRPC to say why.
  EXPECT_EQ(replicas[3].target, "gone.example.net:7444");
  EXPECT_EQ(replicas[3].server_name, "");
}

TEST(ControllerList, TheSystemResolverKnowsLocalhost) {
  auto replicas = cp::resolve_replicas(parse("localhost:7444"), cp::system_resolver());
  ASSERT_FALSE(replicas.empty());
  EXPECT_TRUE(replicas[0].target == "ipv4:127.0.0.1:7444" ||
              replicas[0].target == "ipv6:[::1]:7444")
      << replicas[0].target;
}

class RotationTest : public ::testing::Test {
 protected:
  ReplicaRotation make(const std::string& list) {
    return ReplicaRotation(parse(list), dns.resolver(),
                           {.initial = 100ms, .max = 1000ms, .multiplier = 2, .jitter = 0.2}, clock,
                           7);
  }
  FakeDns dns;
  FakeClock clock;
};

TEST_F(RotationTest, AfterAFailureTheNextReplicaNotTheSameOne) {
  auto rotation = make("192.0.2.1:7444,192.0.2.2:7444,192.0.2.3:7444");
  auto a = rotation.first();
  EXPECT_EQ(a.replica.target, "ipv4:192.0.2.1:7444");
  EXPECT_EQ(a.delay, 0ms);
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) order.push_back(rotation.next(false).replica.target);
  EXPECT_EQ(order, (std::vector<std::string>{"ipv4:192.0.2.2:7444", "ipv4:192.0.2.3:7444",
                                             "ipv4:192.0.2.1:7444", "ipv4:192.0.2.2:7444",
                                             "ipv4:192.0.2.3:7444", "ipv4:192.0.2.1:7444"}));
}

TEST_F(RotationTest, FailuresBackOffWithJitterUpToTheCeiling) {
  auto rotation = make("192.0.2.1:7444,192.0.2.2:7444");
  rotation.first();
  double nominal = 100;
  for (int i = 0; i < 8; ++i) {
    double d = static_cast<double>(rotation.next(false).delay.count());
    EXPECT_GE(d, std::min(1000.0, nominal * 0.8) - 1) << "attempt " << i;
    EXPECT_LE(d, std::min(1000.0, nominal * 1.2)) << "attempt " << i;
    nominal = std::min(1000.0, nominal * 2);
  }
}

TEST_F(RotationTest, ASessionThatWorkedStartsTheBackoffAgain) {
  auto rotation = make("192.0.2.1:7444,192.0.2.2:7444");
  rotation.first();
  for (int i = 0; i < 5; ++i) rotation.next(false);  // up at the ceiling
  // Heard from: the move to the next replica is quick.
  rotation.opened();
  auto after_heard = rotation.next(true);
  EXPECT_LE(after_heard.delay, 120ms);

  for (int i = 0; i < 5; ++i) rotation.next(false);
  // Open but silent (a controller with nothing to send), for longer than
  // the longest delay: it worked too.
  rotation.opened();
  clock.advance(1001ms);
  EXPECT_LE(rotation.next(false).delay, 120ms);

  for (int i = 0; i < 5; ++i) rotation.next(false);
  // Open and closed at once without a word (a replica that refuses the
  // PoP): no reset, the delay stays long.
  rotation.opened();
  clock.advance(10ms);
  EXPECT_GE(rotation.next(false).delay, 800ms);
}

TEST_F(RotationTest, ANameIsResolvedAgainAtEveryMove) {
  dns.records["ctl.example.net"] = {"192.0.2.1", "192.0.2.2", "192.0.2.3"};
  auto rotation = make("ctl.example.net:7444");
  EXPECT_EQ(rotation.first().replica.target, "ipv4:192.0.2.1:7444");
  EXPECT_EQ(rotation.next(false).replica.target, "ipv4:192.0.2.2:7444");
  // The record loses .2, the replica in use: the list starts again.
  dns.records["ctl.example.net"] = {"192.0.2.1", "192.0.2.3"};
  EXPECT_EQ(rotation.next(false).replica.target, "ipv4:192.0.2.1:7444");
  EXPECT_EQ(rotation.next(false).replica.target, "ipv4:192.0.2.3:7444");
  // A record that gains a replica is seen at the next move.
  dns.records["ctl.example.net"] = {"192.0.2.1", "192.0.2.3", "192.0.2.4"};
  EXPECT_EQ(rotation.next(false).replica.target, "ipv4:192.0.2.4:7444");
  EXPECT_EQ(dns.lookups, 5);  // first() and each of the four moves
}

TEST_F(RotationTest, OneReplicaIsTriedAgainAfterTheBackoff) {
  auto rotation = make("127.0.0.1:7444");
  rotation.first();
  auto again = rotation.next(false);
  EXPECT_EQ(again.replica.target, "ipv4:127.0.0.1:7444");
  EXPECT_GE(again.delay, 79ms);
}

}  // namespace
}  // namespace onramp::agent
