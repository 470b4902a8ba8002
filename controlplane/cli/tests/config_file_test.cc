// The file apply reads and export writes: every document shape it takes,
// the paths it says a document gives, and errors that name the document and
// the field.
#include "controlplane/cli/config_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace onramp::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<FileResource> parse(const std::string& text) {
  auto r = parse_config(text);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : std::vector<FileResource>{};
}

std::string parse_error(const std::string& text) {
  auto r = parse_config(text);
  return r.ok() ? "parsed" : r.error();
}

TEST(ConfigFile, DocumentsWithAKind) {
  auto rs = parse(R"(kind: Accelerator
name: web
enabled: true
vips: [203.0.113.10, "2001:db8::10"]
---
kind: EndpointGroup
accelerator: web
listener: https
name: fra
traffic_dial_percent: 50
health_check:
  protocol: HEALTH_CHECK_HTTP
  interval_ms: 2000
resource_version: 7
create_time_ms: 1714471200000
---
---
kind: Endpoint
accelerator: web
listener: https
endpoint_group: fra
address: 2001:DB8:0::21
weight: 0
)");
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(label(rs[0].resource), "accelerator web");
  EXPECT_THAT(rs[0].paths, ElementsAre("enabled", "vips"));
  const auto& g = std::get<v1::EndpointGroup>(rs[1].resource);
  EXPECT_EQ(g.traffic_dial_percent(), 50u);
  EXPECT_EQ(g.health_check().protocol(), v1::HEALTH_CHECK_HTTP);
  EXPECT_EQ(g.resource_version(), 7u);  // read: an update's condition
  // Identity and output-only fields are never changed; nested fields are
  // named one by one.
  EXPECT_THAT(rs[1].paths, ElementsAre("traffic_dial_percent", "health_check.protocol",
                                       "health_check.interval_ms"));
  EXPECT_EQ(rs[1].where, "document 2");
  const auto& e = std::get<v1::Endpoint>(rs[2].resource);
  EXPECT_EQ(e.address(), "2001:db8::21");  // canonical, as the controller keeps it
  EXPECT_TRUE(e.has_weight());
  EXPECT_EQ(label(rs[2].resource), "endpoint web/https/fra/2001:db8::21");
  EXPECT_EQ(rs[2].where, "document 4");
}

TEST(ConfigFile, WhatGetListAndExportPrint) {
  // get -o yaml: no kind, only one kind has all these fields.
  auto rs = parse(
      "name: https\naccelerator: web\nprotocol: TCP\nport_ranges:\n  - first: 443\n"
      "    last: 443\naffinity: NONE\n");
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_STREQ(kind_name(rs[0].resource), "Listener");
  // list -o yaml.
  rs = parse(
      "endpoints:\n  - accelerator: web\n    listener: https\n    endpoint_group: fra\n"
      "    address: 198.51.100.1\n  - accelerator: web\n    listener: https\n"
      "    endpoint_group: fra\n    address: 198.51.100.2\n    weight: 3\n");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].where, "document 1, endpoints[1]");
  // export -o json: one array.
  rs = parse(R"([{"kind": "Accelerator", "name": "web", "vips": ["203.0.113.10"]},
                 {"kind": "Listener", "accelerator": "web", "name": "dns", "protocol": "UDP"}])");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].where, "document 1, item 2");
}

TEST(ConfigFile, ExportReadsBackAsItWasWritten) {
  v1::Accelerator a;
  a.set_name("web");
  a.set_enabled(true);
  a.add_vips("203.0.113.10");
  a.set_create_time_ms(5);
  a.set_resource_version(9);
  v1::EndpointGroup g;
  g.set_accelerator("web");
  g.set_listener("https");
  g.set_name("fra");
  g.set_region("yes");  // a string YAML would read as a boolean
  g.set_traffic_dial_percent(0);
  g.mutable_health_check()->set_udp_request("\x01\x02");
  std::vector<AnyResource> all = {a, g};
  std::string yaml = to_config_yaml(all);
  EXPECT_THAT(yaml, HasSubstr("kind: Accelerator\nname: web\n"));
  EXPECT_THAT(yaml, HasSubstr("---\nkind: EndpointGroup\n"));
  EXPECT_THAT(yaml, ::testing::Not(HasSubstr("resource_version")));
  EXPECT_THAT(yaml, ::testing::Not(HasSubstr("create_time_ms")));
  for (const std::string& text : {yaml, to_config_json(all)}) {
    auto rs = parse(text);
    ASSERT_EQ(rs.size(), 2u) << text;
    v1::Accelerator settings = a;  // what export keeps
    settings.clear_create_time_ms();
    settings.clear_resource_version();
    EXPECT_EQ(std::get<v1::Accelerator>(rs[0].resource).SerializeAsString(),
              settings.SerializeAsString());
    EXPECT_EQ(std::get<v1::EndpointGroup>(rs[1].resource).SerializeAsString(),
              g.SerializeAsString())
        << text;
  }
}

TEST(ConfigFile, ErrorsNameTheDocumentAndTheField) {
  EXPECT_EQ(parse_error("kind: Listner\nname: x\n"),
            "document 1: kind: \"Listner\" is not one of Accelerator, Listener, EndpointGroup, "
            "Endpoint; did you mean \"Listener\"?");
  EXPECT_EQ(parse_error("kind: Accelerator\nname: web\n---\nkind: Listener\naccelerator: web\n"
                        "name: x\nports: [80]\n"),
            "document 2 (Listener): ports: not a field of Listener");
  EXPECT_EQ(parse_error("kind: EndpointGroup\naccelerator: web\nlistener: x\nname: g\n"
                        "health_check:\n  intervl_ms: 5\n"),
            "document 1 (EndpointGroup): health_check.intervl_ms: not a field of HealthCheck; "
            "did you mean \"interval_ms\"?");
  EXPECT_EQ(parse_error("kind: Accelerator\nname: web\nenabled: maybe\n"),
            "document 1 (Accelerator): enabled: \"maybe\" is not true or false");
  EXPECT_EQ(parse_error("kind: Listener\naccelerator: web\n"),
            "document 1 (Listener): name: required");
  EXPECT_EQ(parse_error("name: web\n"),
            "document 1: kind: required (Accelerator, Listener, EndpointGroup or Endpoint)");
  EXPECT_EQ(parse_error("kind: Endpoint\naccelerator: w\nlistener: l\nendpoint_group: g\n"
                        "address: 198.51.100.400\n"),
            "document 1 (Endpoint): address: \"198.51.100.400\" is not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_error("kind: Accelerator\nname: web\n---\nkind: Accelerator\nname: web\n"),
            "document 2: accelerator web is also document 1");
  EXPECT_THAT(parse_error("kind: Endpoint\naccelerator: w\nlistener: l\nendpoint_group: g\n"
                          "address: 198.51.100.4\nweight: lots\n"),
              HasSubstr("document 1 (Endpoint): "));
  EXPECT_THAT(parse_error("kind: [\n"), HasSubstr("line "));
}

TEST(ConfigFile, FieldTextAndComparison) {
  v1::EndpointGroup a, b;
  a.set_traffic_dial_percent(50);
  EXPECT_EQ(field_text(a, "traffic_dial_percent"), "50");
  EXPECT_EQ(field_text(b, "traffic_dial_percent"), "unset");
  EXPECT_FALSE(same_at(a, b, "traffic_dial_percent"));
  a.mutable_health_check()->set_path("/h");
  EXPECT_EQ(field_text(a, "health_check.path"), "\"/h\"");
  EXPECT_TRUE(same_at(a, b, "health_check.port"));
  auto* o = a.add_port_overrides();
  o->set_listener_port(443);
  o->set_endpoint_port(8443);
  EXPECT_EQ(field_text(a, "port_overrides"), "[{listener_port: 443 endpoint_port: 8443}]");
  v1::Accelerator x;
  x.add_vips("192.0.2.1");
  x.add_vips("192.0.2.2");
  EXPECT_EQ(field_text(x, "vips"), "[\"192.0.2.1\", \"192.0.2.2\"]");
}

}  // namespace
}  // namespace onramp::cli
