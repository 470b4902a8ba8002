// The host an agent names in its Hello when --host is not given.
#include "controlplane/agent/host_name.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace onramp::agent {
namespace {

TEST(HostName, IsTheFirstLabelOfTheMachinesNameInLowerCase) {
  EXPECT_EQ(*host_name_from("fra1-a"), "fra1-a");
  EXPECT_EQ(*host_name_from("FRA1-B.pop.example.net"), "fra1-b");
}

TEST(HostName, RefusesANameThatIsNoLabelAndSaysToPassHost) {
  for (const char* bad : {"", ".example.net", "fra1_a", "-fra1"}) {
    auto r = host_name_from(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error(), ::testing::HasSubstr("--host")) << bad;
  }
}

}  // namespace
}  // namespace onramp::agent
