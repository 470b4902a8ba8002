// Value parsers of the command line, and the exit code of each gRPC status.
#include "controlplane/cli/args.h"

#include <gtest/gtest.h>

#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/suggest.h"

namespace onramp::cli {
namespace {

TEST(PortRanges, ParsesSinglePortsAndRangesInOrder) {
  Result<std::vector<PortSpan>> spans = parse_port_ranges("80,443,8000-8099");
  ASSERT_EQ(spans.error(), "");
  EXPECT_EQ(*spans, (std::vector<PortSpan>{{80, 80}, {443, 443}, {8000, 8099}}));
  spans = parse_port_ranges("1-65535");
  ASSERT_EQ(spans.error(), "");
  EXPECT_EQ(*spans, (std::vector<PortSpan>{{1, 65535}}));
  spans = parse_port_ranges("53");
  ASSERT_EQ(spans.error(), "");
  EXPECT_EQ(*spans, (std::vector<PortSpan>{{53, 53}}));
}

TEST(PortRanges, RejectsWhatIsNotAPortList) {
  EXPECT_EQ(parse_port_ranges("").error(), "\"\": empty item in the port list");
  EXPECT_EQ(parse_port_ranges("80,,443").error(), "\"80,,443\": empty item in the port list");
  EXPECT_EQ(parse_port_ranges("80,").error(), "\"80,\": empty item in the port list");
  EXPECT_EQ(parse_port_ranges("0").error(), "\"0\" is not a port (1..65535)");
  EXPECT_EQ(parse_port_ranges("65536").error(), "\"65536\" is not a port (1..65535)");
  EXPECT_EQ(parse_port_ranges("http").error(), "\"http\" is not a port (1..65535)");
  EXPECT_EQ(parse_port_ranges("-80").error(),
            "\"-80\" is not a port range (first-last, ports 1..65535)");
  EXPECT_EQ(parse_port_ranges("80-").error(),
            "\"80-\" is not a port range (first-last, ports 1..65535)");
  EXPECT_EQ(parse_port_ranges("1-2-3").error(),
            "\"1-2-3\" is not a port range (first-last, ports 1..65535)");
  EXPECT_EQ(parse_port_ranges("443,90-80").error(), "\"90-80\": the first port is above the last");
  EXPECT_EQ(parse_port_ranges(" 80").error(), "\" 80\" is not a port (1..65535)");
}

TEST(PortRanges, FormatsTheProtoForm) {
  google::protobuf::RepeatedPtrField<v1::PortRange> ranges;
  ranges.Add()->set_first(80);
  auto* r = ranges.Add();
  r->set_first(443);
  r->set_last(443);
  r = ranges.Add();
  r->set_first(8000);
  r->set_last(8099);
  EXPECT_EQ(format_port_ranges(ranges), "80,443,8000-8099");
}

TEST(PortOverride, ParsesListenerToEndpointPort) {
  Result<v1::PortOverride> o = parse_port_override("80:8080");
  ASSERT_EQ(o.error(), "");
  EXPECT_EQ(o->listener_port(), 80u);
  EXPECT_EQ(o->endpoint_port(), 8080u);
  EXPECT_NE(parse_port_override("80").error(), "");
  EXPECT_NE(parse_port_override("80:0").error(), "");
  EXPECT_NE(parse_port_override(":80").error(), "");
  EXPECT_NE(parse_port_override("80:8080:1").error(), "");
}

TEST(Client, ParsesAddressesWithAndWithoutPorts) {
  Result<ClientAddress> c = parse_client("198.51.100.7");
  ASSERT_EQ(c.error(), "");
  EXPECT_EQ(c->address, "198.51.100.7");
  EXPECT_EQ(c->port, 0u);
  c = parse_client("198.51.100.7:5000");
  ASSERT_EQ(c.error(), "");
  EXPECT_EQ(c->address, "198.51.100.7");
  EXPECT_EQ(c->port, 5000u);
  c = parse_client("2001:db8::7");
  ASSERT_EQ(c.error(), "");
  EXPECT_EQ(c->address, "2001:db8::7");
  EXPECT_EQ(c->port, 0u);
  c = parse_client("[2001:db8::7]:443");
  ASSERT_EQ(c.error(), "");
  EXPECT_EQ(c->address, "2001:db8::7");
  EXPECT_EQ(c->port, 443u);
  c = parse_client("[2001:db8::7]");
  ASSERT_EQ(c.error(), "");
  EXPECT_EQ(c->port, 0u);
}

TEST(Client, RejectsMalformedInput) {
  EXPECT_EQ(parse_client("example.com").error(), "\"example.com\" is not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_client("198.51.100.7:http").error(),
            "\"198.51.100.7:http\": \"http\" is not a port (0..65535)");
  EXPECT_EQ(parse_client("198.51.100.7:70000").error(),
            "\"198.51.100.7:70000\": \"70000\" is not a port (0..65535)");
  EXPECT_EQ(parse_client("[2001:db8::7").error(), "\"[2001:db8::7\": missing ']'");
  EXPECT_EQ(parse_client("[2001:db8::7]443").error(),
            "\"[2001:db8::7]443\": expected [ADDRESS]:PORT");
  EXPECT_EQ(parse_client("300.1.1.1").error(), "\"300.1.1.1\" is not an IPv4 or IPv6 address");
}

TEST(Enums, NamesRoundTrip) {
  for (const std::string& n : kProtocolNames) EXPECT_EQ(protocol_name(protocol_from_name(n)), n);
  for (const std::string& n : kAffinityNames) EXPECT_EQ(affinity_name(affinity_from_name(n)), n);
  for (const std::string& n : kModeNames) EXPECT_EQ(mode_name(mode_from_name(n)), n);
  for (const std::string& n : kHealthProtocolNames)
    EXPECT_EQ(health_protocol_name(health_protocol_from_name(n)), n);
  EXPECT_EQ(protocol_from_name("sctp"), v1::PROTOCOL_UNSPECIFIED);
}

TEST(ExitCodes, OnePerKindOfFailure) {
  using grpc::StatusCode;
  EXPECT_EQ(exit_code_for(StatusCode::OK), 0);
  EXPECT_EQ(exit_code_for(StatusCode::NOT_FOUND), 3);
  EXPECT_EQ(exit_code_for(StatusCode::INVALID_ARGUMENT), 4);
  EXPECT_EQ(exit_code_for(StatusCode::OUT_OF_RANGE), 4);
  EXPECT_EQ(exit_code_for(StatusCode::UNAVAILABLE), 5);
  EXPECT_EQ(exit_code_for(StatusCode::DEADLINE_EXCEEDED), 5);
  EXPECT_EQ(exit_code_for(StatusCode::ALREADY_EXISTS), 6);
  EXPECT_EQ(exit_code_for(StatusCode::FAILED_PRECONDITION), 7);
  EXPECT_EQ(exit_code_for(StatusCode::ABORTED), 9);
  EXPECT_EQ(exit_code_for(StatusCode::UNAUTHENTICATED), 8);
  EXPECT_EQ(exit_code_for(StatusCode::PERMISSION_DENIED), 8);
  EXPECT_EQ(exit_code_for(StatusCode::INTERNAL), 1);
  EXPECT_EQ(exit_code_for(StatusCode::UNIMPLEMENTED), 1);
  EXPECT_EQ(exit_code_for(StatusCode::UNKNOWN), 1);
}

TEST(Suggestions, EditDistanceCountsASwapAsOneEdit) {
  EXPECT_EQ(edit_distance("output", "output"), 0u);
  EXPECT_EQ(edit_distance("outptu", "output"), 1u);
  EXPECT_EQ(edit_distance("foo", "pop"), 2u);
  EXPECT_EQ(edit_distance("", "pop"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Suggestions, NearestOnlyWhenCloseEnough) {
  const std::vector<std::string> commands = {"accelerator", "listener", "endpoint-group",
                                             "endpoint",    "pop",      "routes",
                                             "trace",       "stats",    "version"};
  EXPECT_EQ(nearest("foo", commands), "pop");
  EXPECT_EQ(nearest("acclerator", commands), "accelerator");
  EXPECT_EQ(nearest("endpoint-grop", commands), "endpoint-group");
  EXPECT_EQ(nearest("stat", commands), "stats");
  EXPECT_EQ(nearest("acc", commands), "accelerator");  // the only one it begins
  EXPECT_EQ(nearest("frobnicate", commands), std::nullopt);
  EXPECT_EQ(nearest("zz", commands), std::nullopt);
  EXPECT_EQ(nearest("", commands), std::nullopt);
  EXPECT_EQ(nearest("end", commands), std::nullopt);  // two begin with it
}

}  // namespace
}  // namespace onramp::cli
