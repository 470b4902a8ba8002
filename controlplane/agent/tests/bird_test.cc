// BIRD announcement: which VIPs a table allows, the include file rendered
// for them, the control-socket exchange (against a fake BIRD) and when the
// announcer writes and reconfigures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "controlplane/agent/bird_announcer.h"
#include "controlplane/agent/tests/fakes.h"
#include "controlplane/agent/tests/probe_servers.h"

namespace onramp::agent::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::ForwardingTable two_listeners() {
  v1::ForwardingTable t = sample_table(3);  // web on 203.0.113.10, weight 128
  v1::ForwardingListener* l = t.add_listeners();
  l->set_name("dns");
  l->add_vips("203.0.113.20");
  l->add_vips("2001:DB8:0::0020");
  l->set_protocol(v1::UDP);
  l->add_port_ranges()->set_first(53);
  l->add_endpoints()->set_address("198.51.100.20");
  l->mutable_endpoints(0)->set_weight(1);
  return t;
}

TEST(VipsToAnnounceTest, ListenersWithAServingEndpointOnlyCanonicalAndSorted) {
  v1::ForwardingTable t = two_listeners();
  EXPECT_THAT(vips_to_announce(&t, true),
              ElementsAre("2001:db8::20", "203.0.113.10", "203.0.113.20"));
  // Draining every endpoint of "dns" takes its VIPs out.
  t.mutable_listeners(1)->mutable_endpoints(0)->set_weight(0);
  EXPECT_THAT(vips_to_announce(&t, true), ElementsAre("203.0.113.10"));
  // A listener without endpoints announces nothing either.
  t.mutable_listeners(0)->clear_endpoints();
  EXPECT_TRUE(vips_to_announce(&t, true).empty());
}

TEST(VipsToAnnounceTest, NothingWithoutAHealthyDataplaneOrATable) {
  v1::ForwardingTable t = two_listeners();
  EXPECT_TRUE(vips_to_announce(&t, false).empty());
  EXPECT_TRUE(vips_to_announce(nullptr, true).empty());
}

TEST(RenderBirdConfigTest, StaticProtocolsPerFamily) {
  std::string c = render_bird_config({"203.0.113.200", "203.0.113.201", "2001:db8::200"});
  EXPECT_THAT(c, HasSubstr("protocol static onramp_v4 {\n  ipv4;\n"
                           "  route 203.0.113.200/32 blackhole;\n"
                           "  route 203.0.113.201/32 blackhole;\n}\n"));
  EXPECT_THAT(c, HasSubstr("protocol static onramp_v6 {\n  ipv6;\n"
                           "  route 2001:db8::200/128 blackhole;\n}\n"));
  std::string v4only = render_bird_config({"203.0.113.200"});
  EXPECT_THAT(v4only, Not(HasSubstr("onramp_v6")));
}

TEST(RenderBirdConfigTest, NothingToAnnounceIsCommentsOnly) {
  std::string c = render_bird_config({});
  std::istringstream lines(c);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_TRUE(line.empty() || line[0] == '#') << line;
  }
  EXPECT_GT(n, 0);
}

class BirdTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string socket = dir.path + "/bird.ctl";
  std::string include = dir.path + "/onramp.conf";
};

TEST_F(BirdTest, ConfigureSucceedsOnReconfigured) {
  FakeBird bird(socket);
  Status s = bird_configure(socket, std::chrono::milliseconds(1000));
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_THAT(bird.commands(), ElementsAre("configure"));
}

TEST_F(BirdTest, ConfigureReportsBirdsError) {
  FakeBird bird(socket);
  bird.set_reply("8002 /etc/bird/onramp.conf:3:9 syntax error, unexpected CF_SYM_UNDEFINED\n");
  EXPECT_EQ(bird_configure(socket, std::chrono::milliseconds(1000)).message(),
            "BIRD said \"8002 /etc/bird/onramp.conf:3:9 syntax error, unexpected "
            "CF_SYM_UNDEFINED\"");
}

TEST_F(BirdTest, ConfigureWithoutBirdSaysWhy) {
  EXPECT_EQ(bird_configure(socket, std::chrono::milliseconds(200)).message(),
            socket + ": no such file or directory");
}

TEST_F(BirdTest, AnnouncerReconfiguresOnlyWhenTheSetChanges) {
  FakeBird bird(socket);
  BirdAnnouncer a(BirdOptions{.config_path = include, .socket_path = socket});
  EXPECT_FALSE(a.announced());
  ASSERT_TRUE(a.update({"203.0.113.200"}));
  EXPECT_TRUE(a.announced());
  EXPECT_THAT(read_file(include), HasSubstr("route 203.0.113.200/32 blackhole;"));
  ASSERT_TRUE(a.update({"203.0.113.200"}));
  EXPECT_EQ(bird.commands().size(), 1u);
  ASSERT_TRUE(a.update({}));
  EXPECT_FALSE(a.announced());
  EXPECT_THAT(read_file(include), Not(HasSubstr("route")));
  EXPECT_EQ(bird.commands().size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(include + ".tmp"));
}

TEST_F(BirdTest, TheFirstUpdateAlwaysTellsBirdEvenToWithdraw) {
  FakeBird bird(socket);
  BirdAnnouncer a(BirdOptions{.config_path = include, .socket_path = socket});
  ASSERT_TRUE(a.update({}));
  EXPECT_EQ(bird.commands().size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(include));
}

TEST_F(BirdTest, AnUnreachableBirdIsRetriedOnTheNextUpdate) {
  BirdAnnouncer a(BirdOptions{
      .config_path = include, .socket_path = socket, .timeout = std::chrono::milliseconds(300)});
  EXPECT_FALSE(a.update({"203.0.113.200"}));
  EXPECT_FALSE(a.announced());
  // The file is written even so: a BIRD (re)starting reads it.
  EXPECT_THAT(read_file(include), HasSubstr("203.0.113.200/32"));
  FakeBird bird(socket);
  EXPECT_TRUE(a.update({"203.0.113.200"}));
  EXPECT_TRUE(a.announced());
  EXPECT_EQ(bird.commands().size(), 1u);
  // BIRD refusing the file counts as not told: retried next time.
  bird.set_reply("8002 syntax error\n");
  EXPECT_FALSE(a.update({}));
  EXPECT_TRUE(a.announced());  // BIRD still runs the last accepted set
  bird.set_reply("0003 Reconfigured\n");
  EXPECT_TRUE(a.update({}));
  EXPECT_FALSE(a.announced());
}

}  // namespace
}  // namespace onramp::agent::test
