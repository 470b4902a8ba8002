// Golden output: tables for people, JSON and YAML for programs.
#include "controlplane/cli/output.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <type_traits>

#include "controlplane/cli/jsonpath.h"
#include "controlplane/cli/resource_tables.h"
#include "controlplane/cli/stats_table.h"

namespace onramp::cli {
namespace {

template <typename T>
T parse(const std::string& text) {
  T msg;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &msg)) << text;
  return msg;
}

// `fn` draws the table; those with -o wide columns are drawn narrow here.
template <typename T, typename Fn>
std::string render(const std::string& text, Fn fn) {
  std::ostringstream out;
  if constexpr (std::is_invocable_v<Fn, std::ostream&, const T&, bool>)
    fn(out, parse<T>(text), false);
  else
    fn(out, parse<T>(text));
  return out.str();
}

template <typename T, typename Fn>
std::string render_wide(const std::string& text, Fn fn) {
  std::ostringstream out;
  fn(out, parse<T>(text), true);
  return out.str();
}

TEST(Table, AlignsColumnsAndMarksEmptyCells) {
  Table t({"NAME", "VALUE", "NOTE"});
  t.row({"a", "1", "first"});
  t.row({"longer-name", "", "x"});
  std::ostringstream out;
  t.print(out, "  ");
  EXPECT_EQ(out.str(),
            "  NAME         VALUE  NOTE\n"
            "  a            1      first\n"
            "  longer-name  -      x\n");
}

TEST(Fields, AlignsValues) {
  Fields f;
  f.add("version", "7");
  f.add("publish_us", "35");
  f.add("pop", "");
  std::ostringstream out;
  f.print(out);
  EXPECT_EQ(out.str(),
            "version:     7\n"
            "publish_us:  35\n"
            "pop:         -\n");
}

constexpr char kAccelerators[] = R"(
  accelerators { name: "web" enabled: true vips: "203.0.113.10" vips: "2001:db8:10::10"
                 update_time_ms: 1714557600000 }
  accelerators { name: "staging" vips: "203.0.113.20" })";

TEST(Golden, AcceleratorTable) {
  EXPECT_EQ(render<v1::ListAcceleratorsResponse>(kAccelerators, print_accelerators),
            "NAME     ENABLED  VIPS                          UPDATED\n"
            "web      yes      203.0.113.10,2001:db8:10::10  2024-05-01T10:00:00Z\n"
            "staging  no       203.0.113.20                  -\n");
}

TEST(Golden, AcceleratorTableWideAddsCreated) {
  EXPECT_EQ(render_wide<v1::ListAcceleratorsResponse>(R"(
      accelerators { name: "web" enabled: true vips: "203.0.113.10"
                     create_time_ms: 1714471200000 update_time_ms: 1714557600000 })",
                                                      print_accelerators),
            "NAME  ENABLED  VIPS          UPDATED               CREATED               FLOW LOGS\n"
            "web   yes      203.0.113.10  2024-05-01T10:00:00Z  2024-04-30T10:00:00Z  off\n");
}

TEST(Golden, AcceleratorJson) {
  auto list = parse<v1::ListAcceleratorsResponse>(kAccelerators);
  EXPECT_EQ(to_json(list.accelerators(1)),
            "{\n"
            " \"name\": \"staging\",\n"
            " \"enabled\": false,\n"
            " \"vips\": [\n"
            "  \"203.0.113.20\"\n"
            " ],\n"
            " \"create_time_ms\": \"0\",\n"
            " \"update_time_ms\": \"0\",\n"
            " \"flow_logs\": false,\n"
            " \"flow_log_sample_ppm\": 0,\n"
            " \"relay_off\": false,\n"
            " \"resource_version\": \"0\"\n"
            "}\n");
}

TEST(Golden, AcceleratorYaml) {
  EXPECT_EQ(to_yaml(parse<v1::ListAcceleratorsResponse>(kAccelerators)),
            "accelerators:\n"
            "  - name: web\n"
            "    enabled: true\n"
            "    vips:\n"
            "      - 203.0.113.10\n"
            "      - 2001:db8:10::10\n"
            "    create_time_ms: 0\n"
            "    update_time_ms: 1714557600000\n"
            "    flow_logs: false\n"
            "    flow_log_sample_ppm: 0\n"
            "    relay_off: false\n"
            "    resource_version: 0\n"
            "  - name: staging\n"
            "    enabled: false\n"
            "    vips:\n"
            "      - 203.0.113.20\n"
            "    create_time_ms: 0\n"
            "    update_time_ms: 0\n"
            "    flow_logs: false\n"
            "    flow_log_sample_ppm: 0\n"
            "    relay_off: false\n"
            "    resource_version: 0\n");
  EXPECT_EQ(to_yaml(v1::ListAcceleratorsResponse()), "accelerators: []\n");
  EXPECT_EQ(to_yaml(v1::DeleteResponse()), "{}\n");
}

TEST(Golden, ListenerTable) {
  EXPECT_EQ(
      render<v1::ListListenersResponse>(R"(
      listeners { accelerator: "web" name: "https" protocol: TCP
                  port_ranges { first: 80 } port_ranges { first: 443 }
                  port_ranges { first: 8000 last: 8099 } }
      listeners { accelerator: "web" name: "dns" protocol: UDP port_ranges { first: 53 }
                  affinity: SOURCE_IP tcp_idle_timeout_s: 60 udp_idle_timeout_s: 10 })",
                                        print_listeners),
      "ACCELERATOR  NAME   PROTOCOL  PORTS             AFFINITY   TCP_IDLE_S     UDP_IDLE_S\n"
      "web          https  tcp       80,443,8000-8099  none       340 (default)  30 (default)\n"
      "web          dns    udp       53                source_ip  60             10\n");
}

TEST(Golden, ListenerYamlNestsMessagesInLists) {
  EXPECT_EQ(to_yaml(parse<v1::Listener>(R"(name: "https" accelerator: "web" protocol: TCP
                                           port_ranges { first: 80 }
                                           port_ranges { first: 8000 last: 8099 })")),
            "name: https\n"
            "accelerator: web\n"
            "protocol: TCP\n"
            "port_ranges:\n"
            "  - first: 80\n"
            "    last: 0\n"
            "  - first: 8000\n"
            "    last: 8099\n"
            "affinity: NONE\n"
            "tcp_idle_timeout_s: 0\n"
            "udp_idle_timeout_s: 0\n"
            "create_time_ms: 0\n"
            "update_time_ms: 0\n"
            "resource_version: 0\n");
}

TEST(Golden, EndpointGroupTableShowsEffectiveDefaults) {
  EXPECT_EQ(render<v1::ListEndpointGroupsResponse>(R"(
      endpoint_groups { accelerator: "web" listener: "https" name: "fra" region: "eu-central" }
      endpoint_groups { accelerator: "web" listener: "https" name: "sin" region: "ap-southeast"
                        traffic_dial_percent: 0 unhealthy_drain_s: 0
                        health_check { protocol: HEALTH_CHECK_HTTP port: 8080 path: "/healthz"
                                       interval_ms: 1000 unhealthy_threshold: 2 }
                        port_overrides { listener_port: 443 endpoint_port: 8443 }
                        port_rewrite: PORT_REWRITE_DECAP }
      endpoint_groups { accelerator: "web" listener: "https" name: "old" region: "eu-west"
                        port_overrides { listener_port: 443 endpoint_port: 8443 } })",
                                                   print_endpoint_groups),
            "ACCELERATOR  LISTENER  NAME  REGION        DIAL  HEALTH_CHECK               "
            "INTERVAL_MS  TIMEOUT_MS  UP/DOWN  DRAIN_S  PORT_OVERRIDES\n"
            "web          https     fra   eu-central    100%  tcp                        "
            "10000        2000        3/3      30       -\n"
            "web          https     sin   ap-southeast  0%    http:8080/healthz 200-399  "
            "1000         1000        3/2      0        443:8443 (decap)\n"
            "web          https     old   eu-west       100%  tcp                        "
            "10000        2000        3/3      30       443:8443 (not applied)\n");
}

TEST(Golden, EndpointGroupTableShowsHttpsSniAndVerification) {
  EXPECT_EQ(render<v1::ListEndpointGroupsResponse>(R"(
      endpoint_groups { accelerator: "web" listener: "https" name: "fra" region: "eu-central"
                        health_check { protocol: HEALTH_CHECK_HTTPS path: "/healthz"
                                       tls_server_name: "api.example.com" } }
      endpoint_groups { accelerator: "web" listener: "https" name: "sin" region: "ap-southeast"
                        health_check { protocol: HEALTH_CHECK_HTTPS port: 8443
                                       tls_ca_file: "/etc/onramp/ca.pem" } }
      endpoint_groups { accelerator: "web" listener: "https" name: "syd" region: "ap-southeast"
                        health_check { protocol: HEALTH_CHECK_HTTPS tls_skip_verify: true } })",
                                                   print_endpoint_groups),
            "ACCELERATOR  LISTENER  NAME  REGION        DIAL  "
            "HEALTH_CHECK                                         "
            "INTERVAL_MS  TIMEOUT_MS  UP/DOWN  DRAIN_S  PORT_OVERRIDES\n"
            "web          https     fra   eu-central    100%  "
            "https/healthz 200-399 sni=api.example.com ca=system  "
            "10000        2000        3/3      30       -\n"
            "web          https     sin   ap-southeast  100%  "
            "https:8443/ 200-399 ca=/etc/onramp/ca.pem            "
            "10000        2000        3/3      30       -\n"
            "web          https     syd   ap-southeast  100%  "
            "https/ 200-399 insecure                              "
            "10000        2000        3/3      30       -\n");
}

TEST(Golden, EndpointGroupYamlShowsOptionalFieldsOnlyWhenSet) {
  std::string unset = to_yaml(parse<v1::EndpointGroup>(R"(name: "fra")"));
  EXPECT_EQ(unset.find("traffic_dial_percent"), std::string::npos) << unset;
  EXPECT_EQ(unset.find("health_check"), std::string::npos) << unset;
  std::string zero = to_yaml(parse<v1::EndpointGroup>(R"(name: "fra" traffic_dial_percent: 0
                                                          health_check {})"));
  EXPECT_NE(zero.find("traffic_dial_percent: 0\n"), std::string::npos) << zero;
  EXPECT_NE(zero.find("health_check:\n  protocol: HEALTH_CHECK_PROTOCOL_UNSPECIFIED\n  port: 0\n"
                      "  path: \"\"\n"),
            std::string::npos)
      << zero;
}

TEST(Golden, EndpointTable) {
  EXPECT_EQ(render<v1::ListEndpointsResponse>(R"(
      endpoints { accelerator: "web" listener: "https" endpoint_group: "fra"
                  address: "198.51.100.11" }
      endpoints { accelerator: "web" listener: "https" endpoint_group: "sin"
                  address: "2001:db8:ae::21" weight: 0 mode: ENCAP_GUE })",
                                              print_endpoints),
            "ACCELERATOR  LISTENER  ENDPOINT_GROUP  ADDRESS          WEIGHT        MODE\n"
            "web          https     fra             198.51.100.11    128           ipip\n"
            "web          https     sin             2001:db8:ae::21  0 (draining)  gue\n");
}

TEST(Golden, PopTable) {
  EXPECT_EQ(render<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" iata: "FRA" city: "Frankfurt" country: "DE" state: POP_CONNECTED
             applied_version: 12 sent_version: 12 dataplane_healthy: true bgp_announced: true
             last_seen_ms: 1714557600000 last_apply_latency_ms: 18
             agent_version: "0.1.0" }
      pops { id: "SIN1" iata: "SIN" city: "Singapore" country: "SG" state: POP_DISCONNECTED
             applied_version: 11 sent_version: 12 nacked_version: 12
             nack_error: "table.listeners[0].endpoints[0].address: bad" }
      config_version: 12)",
                                         print_pops),
            "POP   CITY       COUNTRY  STATE         APPLIED  SENT  DATAPLANE  BGP        "
            "APPLY_MS  LAST_SEEN             AGENT\n"
            "FRA1  Frankfurt  DE       connected     12       12    healthy    announced  "
            "18        2024-05-01T10:00:00Z  0.1.0\n"
            "SIN1  Singapore  SG       disconnected  11       12    unhealthy  withdrawn  "
            "0         -                     -\n"
            "\n"
            "config version 12\n"
            "SIN1 refused version 12: table.listeners[0].endpoints[0].address: bad\n");
}

// Static stability: a PoP whose agent routed on its own runs that table.
TEST(Golden, PopTableSaysWhichPopRunsItsAgentsOwnTable) {
  EXPECT_EQ(render<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" city: "Frankfurt" country: "DE" state: POP_CONNECTED
             applied_version: 12 sent_version: 12 own_table: true }
      config_version: 12)",
                                         print_pops),
            "POP   CITY       COUNTRY  STATE      APPLIED   SENT  DATAPLANE  BGP        "
            "APPLY_MS  LAST_SEEN  AGENT\n"
            "FRA1  Frankfurt  DE       connected  12 (own)  12    unhealthy  withdrawn  "
            "0         -          -\n"
            "\n"
            "config version 12\n"
            "FRA1 runs a table its agent computed while the controller was away\n");
}

// Hardening finding: newlines and ANSI escapes in a PoP's Hello fields made
// fake rows in `pop list`; a NACK text did the same below the table.
TEST(Golden, PopTableShowsControlCharactersEscapedNotObeyed) {
  std::string out = render<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" iata: "FRA" city: "Frank\nSIN9  forged  row\033[2J" country: "DE"
             state: POP_CONNECTED nacked_version: 3 nack_error: "bad\nFRA1 applied 999" }
      config_version: 3)",
                                                 print_pops);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 5) << out;
  EXPECT_EQ(out.find('\033'), std::string::npos) << out;
  EXPECT_NE(out.find("Frank\\nSIN9  forged  row\\x1b[2J"), std::string::npos) << out;
  EXPECT_NE(out.find("FRA1 refused version 3: bad\\nFRA1 applied 999\n"), std::string::npos) << out;
}

TEST(Golden, PopTableWideAddsLocationTunnelSourceAndReplica) {
  EXPECT_EQ(render_wide<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" iata: "FRA" city: "Frankfurt" country: "DE" state: POP_CONNECTED
             latitude: 50.0379 longitude: 8.5622
             tunnel_source { ipv4: "192.0.2.1" ipv6: "2001:db8::1" }
             applied_version: 12 sent_version: 12 nacked_version: 11
             next_hop_source: "learned" next_hop_mac: "02:00:00:00:00:01"
             replica: "ctl-b pid 7 admin 127.0.0.1:7445" }
      config_version: 12)",
                                              print_pops),
            "POP   CITY       COUNTRY  STATE      APPLIED  SENT  DATAPLANE  BGP        "
            "APPLY_MS  LAST_SEEN  AGENT  IATA  LOCATION        TUNNEL_SOURCE           NACKED  "
            "NEXT_HOP                     REPLICA\n"
            "FRA1  Frankfurt  DE       connected  12       12    unhealthy  withdrawn  "
            "0         -          -      FRA   50.0379,8.5622  192.0.2.1, 2001:db8::1  11      "
            "02:00:00:00:00:01 (learned)  ctl-b pid 7 admin 127.0.0.1:7445\n"
            "\n"
            "config version 12\n"
            "FRA1 refused version 11: \n");
}

// A PoP of several servers: one row per host under the PoPs, -o wide with
// when each connected, its tunnel sources and next hop.
TEST(Golden, PopTableListsTheHostsOfEachPop) {
  const char* list = R"(
      pops { id: "FRA1" city: "Frankfurt" country: "DE" state: POP_CONNECTED
             applied_version: 12 sent_version: 12 dataplane_healthy: true bgp_announced: true
             hosts { name: "fra1-a" agent_version: "0.1.0" applied_version: 12
                     dataplane_healthy: true bgp_announced: true last_apply_latency_ms: 18
                     tunnel_source { ipv4: "192.0.2.1" } next_hop_source: "learned"
                     next_hop_mac: "02:00:00:00:00:01" }
             hosts { name: "fra1-b" agent_version: "0.1.0" applied_version: 12
                     last_apply_latency_ms: 25 tunnel_source { ipv4: "192.0.2.2" } } }
      config_version: 12)";
  EXPECT_EQ(render<v1::ListPopsResponse>(list, print_pops),
            "POP   CITY       COUNTRY  STATE      APPLIED  SENT  DATAPLANE  BGP        "
            "APPLY_MS  LAST_SEEN  AGENT\n"
            "FRA1  Frankfurt  DE       connected  12       12    healthy    announced  "
            "0         -          -\n"
            "\n"
            "POP   HOST    APPLIED  DATAPLANE  BGP        APPLY_MS  LAST_SEEN  AGENT\n"
            "FRA1  fra1-a  12       healthy    announced  18        -          0.1.0\n"
            "FRA1  fra1-b  12       unhealthy  withdrawn  25        -          0.1.0\n"
            "\n"
            "config version 12\n");
  std::string wide = render_wide<v1::ListPopsResponse>(list, print_pops);
  EXPECT_NE(wide.find("POP   HOST    APPLIED  DATAPLANE  BGP        APPLY_MS  LAST_SEEN  AGENT  "
                      "CONNECTED  TUNNEL_SOURCE  NEXT_HOP\n"),
            std::string::npos)
      << wide;
  EXPECT_NE(wide.find("192.0.2.2"), std::string::npos) << wide;
  EXPECT_NE(wide.find("02:00:00:00:00:01 (learned)"), std::string::npos) << wide;
}

TEST(Golden, PopTableNamesAPopWhoseNextHopIsUnresolved) {
  std::string out = render<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" state: POP_CONNECTED next_hop_source: "unresolved"
             next_hop_address: "10.99.0.1" }
      config_version: 3)",
                                                 print_pops);
  EXPECT_NE(out.find("FRA1 does not know its next hop's MAC (unresolved via 10.99.0.1): its "
                     "tunnel packets are dropped\n"),
            std::string::npos)
      << out;
}

TEST(Golden, WideTablesOfListenersGroupsAndEndpointsAddTimes) {
  EXPECT_EQ(render_wide<v1::ListListenersResponse>(R"(
      listeners { accelerator: "web" name: "https" protocol: TCP port_ranges { first: 443 }
                  create_time_ms: 1714471200000 update_time_ms: 1714557600000 })",
                                                   print_listeners),
            "ACCELERATOR  NAME   PROTOCOL  PORTS  AFFINITY  TCP_IDLE_S     UDP_IDLE_S    CREATED"
            "               UPDATED\n"
            "web          https  tcp       443    none      340 (default)  30 (default)  "
            "2024-04-30T10:00:00Z  2024-05-01T10:00:00Z\n");
  std::string groups = render_wide<v1::ListEndpointGroupsResponse>(
      R"(endpoint_groups { accelerator: "web" listener: "https" name: "fra"
                           create_time_ms: 1714471200000 })",
      print_endpoint_groups);
  EXPECT_NE(groups.find("PORT_OVERRIDES  CREATED               UPDATED\n"), std::string::npos)
      << groups;
  EXPECT_NE(groups.find("2024-04-30T10:00:00Z  -\n"), std::string::npos) << groups;
  std::string endpoints = render_wide<v1::ListEndpointsResponse>(
      R"(endpoints { accelerator: "web" listener: "https" endpoint_group: "fra"
                     address: "198.51.100.11" update_time_ms: 1714557600000 })",
      print_endpoints);
  EXPECT_NE(endpoints.find("MODE  CREATED  UPDATED\n"), std::string::npos) << endpoints;
  EXPECT_NE(endpoints.find("ipip  -        2024-05-01T10:00:00Z\n"), std::string::npos)
      << endpoints;
}

// What -o jsonpath=EXPR prints, on the JSON -o json prints.
std::string pick(const std::string& expr, const google::protobuf::Message& message) {
  Result<JsonPath> path = JsonPath::parse(expr);
  if (!path.ok()) return "parse error: " + path.error();
  Result<std::string> picked = path->apply(message);
  return picked.ok() ? *picked : "error: " + picked.error();
}

TEST(JsonPathTest, PicksFieldsListsIndexesAndNestedFields) {
  auto pops = parse<v1::ListPopsResponse>(R"(
      pops { id: "FRA1" city: "Frankfurt" state: POP_CONNECTED applied_version: 12
             last_apply_latency_ms: 18 dataplane_healthy: true
             tunnel_source { ipv4: "192.0.2.1" } }
      pops { id: "SIN1" city: "Singapore" latitude: 1.35 }
      config_version: 12)");
  EXPECT_EQ(pick("{.pops[*].id}", pops), "FRA1 SIN1\n");
  EXPECT_EQ(pick(".pops[*].id", pops), "FRA1 SIN1\n");
  EXPECT_EQ(pick("{.pops[1].city}", pops), "Singapore\n");
  EXPECT_EQ(pick("{.pops[0].tunnel_source.ipv4}", pops), "192.0.2.1\n");
  EXPECT_EQ(pick("{.pops[*].tunnel_source.ipv4}", pops), "192.0.2.1\n");  // SIN1: unset
  EXPECT_EQ(pick("{.config_version}", pops), "12\n");                     // uint64: a JSON string
  EXPECT_EQ(pick("{.pops[0].last_apply_latency_ms}", pops), "18\n");
  EXPECT_EQ(pick("{.pops[1].latitude}", pops), "1.35\n");
  EXPECT_EQ(pick("{.pops[*].dataplane_healthy}", pops), "true false\n");
  EXPECT_EQ(pick("{.pops[0].state}", pops), "POP_CONNECTED\n");
  EXPECT_EQ(pick("{.pops[7].id}", pops), "\n");
  EXPECT_EQ(pick("{.pops[0].id}={.pops[0].city} ", pops), "FRA1=Frankfurt \n");
  EXPECT_EQ(pick("{$.pops[0].tunnel_source}", pops), "{\"ipv4\":\"192.0.2.1\",\"ipv6\":\"\"}\n");
  v1::DeleteResponse empty;
  EXPECT_EQ(pick("{.}", empty), "{}\n");
  v1::Listener l;
  l.add_port_ranges()->set_first(443);
  EXPECT_EQ(pick("{.port_ranges}", l), "[{\"first\":443,\"last\":0}]\n");
}

TEST(JsonPathTest, ErrorsSayWhatAndWhere) {
  v1::ListPopsResponse pops;
  EXPECT_EQ(pick("{.pops[*].id", pops),
            "parse error: \"{.pops[*].id\" at character 1: a '{' without its '}'");
  EXPECT_EQ(pick("{pops}", pops),
            "parse error: \"{pops}\" at character 2: an expression starts with '.' (\"{.name}\", "
            "\"{.}\")");
  EXPECT_EQ(pick("{.pops[x]}", pops),
            "parse error: \"{.pops[x]}\" at character 8: an index is [*] or a number, [0] for the "
            "first");
  EXPECT_EQ(pick("{.pops..id}", pops),
            "parse error: \"{.pops..id}\" at character 8: a field name after '.'");
  EXPECT_EQ(pick("", pops), "parse error: an empty expression; e.g. jsonpath='{.name}'");
  EXPECT_EQ(pick("pops", pops),
            "parse error: \"pops\" picks nothing: put the path in braces, e.g. '{.name}'");
  *pops.add_pops()->mutable_id() = "FRA1";
  EXPECT_EQ(pick("{.pops[*].nmae}", pops),
            "error: {.pops[*].nmae}: onramp.v1.Pop has no field \"nmae\"");
  EXPECT_EQ(pick("{.pops.id}", pops),
            "error: {.pops.id}: \"id\" is asked of a list; pick its items with [*] or [N] first");
  EXPECT_EQ(pick("{.config_version[0]}", pops),
            "error: {.config_version[0]}: [0] is asked of something that is not a list");
}

TEST(Golden, Routes) {
  EXPECT_EQ(render<v1::GetRoutesResponse>(R"(
      pop: "FRA1" table { version: 12 } applied_version: 11
      listeners {
        accelerator: "web" listener: "https"
        groups { endpoint_group: "fra" region: "eu-central" share_percent: 60
                 traffic_dial_percent: 60 healthy_endpoints: 2 endpoints: 2 rtt_ms: 4.26
                 reason: "nearest healthy group, dial 60 %" }
        groups { endpoint_group: "sin" region: "ap-southeast" share_percent: 40
                 traffic_dial_percent: 100 healthy_endpoints: 1 endpoints: 1 rtt_ms: -1
                 reason: "spill-over: nearer group dialled to 60 %" }
        endpoints { address: "198.51.100.11" weight: 96 label: "fra" }
        endpoints { address: "2001:db8:ae::21" weight: 64 label: "sin" unhealthy: true }
      })",
                                          print_routes),
            "pop FRA1: computed version 12, applied version 11\n"
            "\n"
            "web/https\n"
            "  #  GROUP  REGION        RTT         HEALTHY  DIAL  SHARE  REASON\n"
            "  1  fra    eu-central    4.3 ms      2/2      60%   60%    "
            "nearest healthy group, dial 60 %\n"
            "  2  sin    ap-southeast  unmeasured  1/1      100%  40%    "
            "spill-over: nearer group dialled to 60 %\n"
            "\n"
            "  ENDPOINT         WEIGHT  HEALTHY  MODE  LABEL\n"
            "  198.51.100.11    96      yes      ipip  fra\n"
            "  2001:db8:ae::21  64      no       ipip  sin\n");
}

TEST(Golden, PopMatrix) {
  EXPECT_EQ(render<v1::GetPopMatrixResponse>(R"(
      paths { from: "FRA1" to: "SIN1" rtt_ms: 151.04 jitter_ms: 1.2 loss_percent: 0 }
      paths { from: "SIN1" to: "FRA1" rtt_ms: 150.7 jitter_ms: 0.9 loss_percent: 3.3 }
      paths { from: "SIN1" to: "IAD1" rtt_ms: -1 loss_percent: 100 down: true }
      regions { pop: "FRA1" region: "ap-southeast" rtt_ms: 151 }
      regions { pop: "FRA1" region: "eu-central" rtt_ms: 2.1 }
      regions { pop: "SIN1" region: "ap-southeast" rtt_ms: 2.04 }
      regions { pop: "SIN1" region: "eu-central" rtt_ms: -1 })",
                                             print_pop_matrix),
            "PoP x PoP: smoothed RTT/jitter, loss (mesh probes)\n"
            "FROM \\ TO  FRA1             IAD1                        SIN1\n"
            "FRA1       -                -                           151/1.2 ms 0%\n"
            "IAD1       -                -                           -\n"
            "SIN1       150.7/0.9 ms 3%  down: no reply (100% loss)  -\n"
            "\n"
            "PoP x region: RTT of the nearest group (endpoint probes)\n"
            "POP \\ REGION  ap-southeast  eu-central\n"
            "FRA1          151 ms        2.1 ms\n"
            "IAD1          -             -\n"
            "SIN1          2 ms          unmeasured\n");
  EXPECT_EQ(render<v1::GetPopMatrixResponse>("", print_pop_matrix),
            "no PoP x PoP measurement yet: no PoP is connected, or none reported\n");
}

TEST(Golden, RoutesWithRelay) {
  EXPECT_EQ(render<v1::GetRoutesResponse>(R"(
      pop: "FRA1" table { version: 12 } applied_version: 12
      listeners {
        accelerator: "web" listener: "https"
        groups { endpoint_group: "eu" region: "eu-central" share_percent: 100
                 traffic_dial_percent: 100 healthy_endpoints: 1 endpoints: 1 rtt_ms: 2
                 reason: "nearest healthy group" direct_rtt_ms: 2
                 path_reason: "direct: via SIN1 would be 152.3 ms, not better than 2.0 ms by the 10.0 ms margin" }
        groups { endpoint_group: "ap" region: "ap-southeast" share_percent: 0
                 traffic_dial_percent: 100 healthy_endpoints: 1 endpoints: 1 rtt_ms: 47.3
                 reason: "standby" via: "SIN1" direct_rtt_ms: 151
                 path_reason: "via SIN1: 45.2 + 2.1 ms beats direct 151.0 ms by 69 %" }
        endpoints { address: "198.51.100.11" weight: 255 label: "eu" }
        endpoints { address: "198.51.100.41" weight: 0 label: "ap" relay: "192.0.2.2" }
      })",
                                          print_routes),
            "pop FRA1: computed version 12, applied version 12\n"
            "\n"
            "web/https\n"
            "  #  GROUP  REGION        RTT      HEALTHY  DIAL  SHARE  REASON\n"
            "  1  eu     eu-central    2 ms     1/1      100%  100%   nearest healthy group\n"
            "  2  ap     ap-southeast  47.3 ms  1/1      100%  0%     standby\n"
            "\n"
            "  GROUP  PATH\n"
            "  eu     direct: via SIN1 would be 152.3 ms, not better than 2.0 ms by the 10.0 ms "
            "margin\n"
            "  ap     via SIN1: 45.2 + 2.1 ms beats direct 151.0 ms by 69 %\n"
            "\n"
            "  ENDPOINT       WEIGHT  HEALTHY  MODE  LABEL  RELAY\n"
            "  198.51.100.11  255     yes      ipip  eu     -\n"
            "  198.51.100.41  0       yes      ipip  ap     192.0.2.2\n");
}

TEST(Golden, RoutesFailOpen) {
  EXPECT_EQ(render<v1::GetRoutesResponse>(R"(
      pop: "FRA1" table { version: 3 } applied_version: 3
      listeners {
        accelerator: "web" listener: "https" fail_open: true
        groups { endpoint_group: "fra" share_percent: 100 traffic_dial_percent: 100
                 healthy_endpoints: 0 endpoints: 1 rtt_ms: 4 reason: "fail-open" }
      })",
                                          print_routes),
            "pop FRA1: computed version 3, applied version 3\n"
            "\n"
            "web/https\n"
            "  #  GROUP  REGION  RTT   HEALTHY  DIAL  SHARE  REASON\n"
            "  1  fra    -       4 ms  0/1      100%  100%   fail-open\n"
            "  FAIL OPEN: no endpoint is healthy from FRA1; every new flow goes to the nearest "
            "group, health ignored\n");
}

TEST(Golden, Health) {
  EXPECT_EQ(render<v1::GetHealthResponse>(R"(
      endpoints { pop: "FRA1" accelerator: "web" listener: "https" endpoint_group: "fra"
                  region: "eu-central" address: "198.51.100.11" state: HEALTH_STATE_HEALTHY
                  rtt_ms: 4.26 consecutive: 12 last_change_ms: 1714557600000 }
      endpoints { pop: "FRA1" accelerator: "web" listener: "https" endpoint_group: "sin"
                  address: "2001:db8:ae::21" state: HEALTH_STATE_UNHEALTHY rtt_ms: -1
                  consecutive: 3 last_error: "connect: timed out" last_change_ms: 1714557660000 }
      endpoints { pop: "SIN1" accelerator: "web" listener: "https" endpoint_group: "fra"
                  region: "eu-central" address: "198.51.100.11" rtt_ms: -1 })",
                                          print_health),
            "POP   LISTENER   GROUP (REGION)    ENDPOINT         STATE         RTT     SINCE       "
            "          LAST ERROR\n"
            "FRA1  web/https  fra (eu-central)  198.51.100.11    healthy x12   4.3 ms  "
            "2024-05-01T10:00:00Z  -\n"
            "FRA1  web/https  sin               2001:db8:ae::21  unhealthy x3  -       "
            "2024-05-01T10:01:00Z  connect: timed out\n"
            "SIN1  web/https  fra (eu-central)  198.51.100.11    unknown       -       -           "
            "          -\n");
  EXPECT_EQ(render<v1::GetHealthResponse>("", print_health),
            "no endpoint health: no PoP is connected, or no endpoint matches\n");
}

// -o wide adds the TLS handshake of HTTPS checks, kept apart from the RTT.
TEST(Golden, HealthWideShowsTlsHandshake) {
  EXPECT_EQ(render_wide<v1::GetHealthResponse>(R"(
      endpoints { pop: "FRA1" accelerator: "web" listener: "https" endpoint_group: "fra"
                  address: "198.51.100.11" state: HEALTH_STATE_HEALTHY rtt_ms: 1.5
                  tls_handshake_ms: 7.4 last_change_ms: 1714557600000 }
      endpoints { pop: "FRA1" accelerator: "web" listener: "https" endpoint_group: "fra"
                  address: "198.51.100.12" state: HEALTH_STATE_HEALTHY rtt_ms: 1.5
                  tls_handshake_ms: -1 last_change_ms: 1714557600000 })",
                                               print_health),
            "POP   LISTENER   GROUP (REGION)  ENDPOINT       STATE    RTT     SINCE       "
            "          LAST ERROR  TLS HANDSHAKE\n"
            "FRA1  web/https  fra             198.51.100.11  healthy  1.5 ms  "
            "2024-05-01T10:00:00Z  -           7.4 ms\n"
            "FRA1  web/https  fra             198.51.100.12  healthy  1.5 ms  "
            "2024-05-01T10:00:00Z  -           -\n");
}

// The test bed reads these names: proto field names, enums by name.
TEST(Golden, HealthAndRoutesJsonKeepProtoNames) {
  std::string health = to_json(parse<v1::GetHealthResponse>(R"(
      endpoints { pop: "FRA1" listener: "https" address: "198.51.100.11"
                  state: HEALTH_STATE_UNHEALTHY rtt_ms: 4.5 })"));
  EXPECT_NE(health.find("\"pop\": \"FRA1\""), std::string::npos) << health;
  EXPECT_NE(health.find("\"state\": \"HEALTH_STATE_UNHEALTHY\""), std::string::npos) << health;
  EXPECT_NE(health.find("\"rtt_ms\": 4.5"), std::string::npos) << health;
  std::string routes = to_json(parse<v1::GetRoutesResponse>(R"(
      listeners { listener: "https" fail_open: true
                  groups { region: "eu-central" share_percent: 60 rtt_ms: 4.5 } })"));
  for (const char* key : {"\"listener\": \"https\"", "\"region\": \"eu-central\"",
                          "\"share_percent\": 60", "\"rtt_ms\": 4.5", "\"fail_open\": true"})
    EXPECT_NE(routes.find(key), std::string::npos) << key << " in " << routes;
}

TEST(Golden, Trace) {
  EXPECT_EQ(
      render<v1::TraceFlowResponse>(R"pb(
                                      pop: "FRA1"
                                      accelerator: "web"
                                      listener: "https"
                                      endpoint_group: "fra"
                                      region: "eu-central"
                                      endpoint: "198.51.100.11"
                                      table_version: 12
                                      explanation: "listener https matches TCP 203.0.113.10:443"
                                      explanation: "nearest group fra (4.3 ms)")pb",
                                    print_trace),
      "pop:             FRA1\n"
      "accelerator:     web\n"
      "listener:        https\n"
      "endpoint_group:  fra\n"
      "region:          eu-central\n"
      "endpoint:        198.51.100.11\n"
      "mode:            ipip\n"
      "table_version:   12\n"
      "explanation:\n"
      "  1. listener https matches TCP 203.0.113.10:443\n"
      "  2. nearest group fra (4.3 ms)\n");
}

constexpr char kStats[] = R"(
  table_version: 3 pop: "FRA1" workers: 2 rx_packets: 1000 rx_bytes: 64000 forwarded: 990
  dropped: 10 drops { key: "non_vip" value: 7 } drops { key: "fragment" value: 3 }
  drops { key: "too_big" value: 0 } new_flows: 20 flows_live: 18 flow_capacity: 8192
  tables_applied: 3 uptime_ms: 12345 flow_inserts: 20 flow_expired: 2 idle_sleeps: 5
  icmp_too_big_sent: 4 fragmented: 2 fragments_sent: 3 fragments_forwarded: 6
  fragment_trains: 3 fragment_trains_completed: 2 fragment_trains_timed_out: 1
  flow_log_flows: 4 flow_log_records: 7 flow_log_dropped: 1
  listeners { name: "web" packets: 990 bytes: 63360 new_flows: 20
              endpoints { address: "198.51.100.11" label: "fra" weight: 128 healthy: true
                          packets: 990 bytes: 63360 new_flows: 20 } }
  ports { id: 0 name: "net_pcap0" mac: "02:70:63:61:70:00" rx_packets: 1000 tx_packets: 990 })";

TEST(Golden, DataplaneStats) {
  EXPECT_EQ(render<v1::DataplaneStats>(kStats, print_dataplane_stats),
            "pop:                    FRA1\n"
            "table_version:          3\n"
            "tables_applied:         3\n"
            "uptime:                 12.345 s\n"
            "workers:                2\n"
            "rx_packets:             1000\n"
            "rx_bytes:               64000\n"
            "forwarded:              990\n"
            "echo_replies:           0\n"
            "icmp_errors_forwarded:  0\n"
            "icmp_too_big_sent:      4\n"
            "fragmented:             2 packets, 3 frames more\n"
            "fragments_forwarded:    6\n"
            "fragment_trains:        3 (2 completed, 1 timed out, 0 evicted)\n"
            "dropped:                10\n"
            "new_flows:              20\n"
            "flows_moved:            0\n"
            "drained_packets:        0\n"
            "flows_live:             18 of 8192\n"
            "flow_inserts:           20\n"
            "flow_expired:           2\n"
            "flow_evictions:         0\n"
            "idle_sleeps:            5\n"
            "flow_logs:              4 flows, 7 records, 1 lost\n"
            "\n"
            "DROP_REASON  PACKETS\n"
            "fragment     3\n"
            "non_vip      7\n"
            "\n"
            "LISTENER  ENDPOINT       LABEL  WEIGHT  HEALTHY  PACKETS  BYTES  NEW_FLOWS\n"
            "web       *              -      -       -        990      63360  20\n"
            "web       198.51.100.11  fra    128     yes      990      63360  20\n"
            "\n"
            "PORT  NAME       MAC                RX_PACKETS  TX_PACKETS  MISSED\n"
            "0     net_pcap0  02:70:63:61:70:00  1000        990         0\n");
}

// The AF_XDP steering line appears only where a port has onramp's program.
TEST(Golden, DataplaneStatsShowXdpSteeringOnlyWithIt) {
  auto stats = parse<v1::DataplaneStats>(kStats);
  std::ostringstream without;
  print_dataplane_stats(without, stats);
  EXPECT_EQ(without.str().find("xdp_steering"), std::string::npos) << without.str();
  stats.mutable_xdp_steering()->set_ports(1);
  stats.mutable_xdp_steering()->set_destinations(2);
  stats.mutable_xdp_steering()->set_map_updates(4);
  std::ostringstream with;
  print_dataplane_stats(with, stats);
  EXPECT_NE(with.str().find("idle_sleeps:            5\n"
                            "xdp_steering:           2 destinations on 1 port, 4 map updates, "
                            "0 errors\n"),
            std::string::npos)
      << with.str();
}

// The relay line appears only at a PoP that relays or is relayed through.
TEST(Golden, DataplaneStatsShowRelayingOnlyWhenThereIsSome) {
  auto stats = parse<v1::DataplaneStats>(kStats);
  std::ostringstream without;
  print_dataplane_stats(without, stats);
  EXPECT_EQ(without.str().find("relayed"), std::string::npos) << without.str();
  stats.set_relayed_out(5);
  stats.set_relayed_in(2);
  std::ostringstream with;
  print_dataplane_stats(with, stats);
  EXPECT_NE(with.str().find("drained_packets:        0\n"
                            "relayed:                5 out (through a relay PoP), 2 in (relayed "
                            "for a peer PoP)\n"),
            std::string::npos)
      << with.str();
}

TEST(Golden, DataplaneStatsYamlSortsTheDropMap) {
  std::string yaml = to_yaml(parse<v1::DataplaneStats>(kStats));
  EXPECT_NE(yaml.find("drops:\n  fragment: 3\n  non_vip: 7\n  too_big: 0\n"), std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("listeners:\n  - name: web\n    packets: 990\n    bytes: 63360\n"
                      "    new_flows: 20\n    endpoints:\n      - address: 198.51.100.11\n"
                      "        label: fra\n"),
            std::string::npos)
      << yaml;
}

TEST(Golden, StatsSummaryAndDetail) {
  std::string text = std::string("pops { pop: \"FRA1\" reported_ms: 1714557600000 stats {") +
                     kStats + "} } pops { pop: \"SIN1\" }";
  EXPECT_EQ(
      render<v1::GetStatsResponse>(
          text, [](std::ostream& o, const v1::GetStatsResponse& r) { print_stats(o, r, false); }),
      "POP   REPORTED              TABLE_VERSION  RX_PACKETS  FORWARDED  DROPPED  "
      "NEW_FLOWS  FLOWS_LIVE\n"
      "FRA1  2024-05-01T10:00:00Z  3              1000        990        10       "
      "20         18\n"
      "SIN1  -                     0              0           0          0        "
      "0          0\n");
  std::string detail = render<v1::GetStatsResponse>(
      text, [](std::ostream& o, const v1::GetStatsResponse& r) { print_stats(o, r, true); });
  EXPECT_EQ(detail.rfind("pop FRA1, reported 2024-05-01T10:00:00Z\n\npop:  ", 0), 0u) << detail;
}

TEST(Yaml, QuotesWhatWouldNotReadBackAsTheSameString) {
  auto yaml_of = [](const std::string& s) {
    v1::AcceleratorKey k;
    k.set_name(s);
    std::string y = to_yaml(k);
    return y.substr(6, y.size() - 7);  // between "name: " and "\n"
  };
  EXPECT_EQ(yaml_of("web"), "web");
  EXPECT_EQ(yaml_of("203.0.113.10"), "203.0.113.10");
  EXPECT_EQ(yaml_of("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(yaml_of("02:00:00:00:00:fe"), "02:00:00:00:00:fe");
  EXPECT_EQ(yaml_of("nearest healthy group, dial 100 %"), "nearest healthy group, dial 100 %");
  EXPECT_EQ(yaml_of(""), "\"\"");
  EXPECT_EQ(yaml_of("yes"), "\"yes\"");
  EXPECT_EQ(yaml_of("Off"), "\"Off\"");
  EXPECT_EQ(yaml_of("null"), "\"null\"");
  EXPECT_EQ(yaml_of("~"), "\"~\"");
  EXPECT_EQ(yaml_of("123"), "\"123\"");
  EXPECT_EQ(yaml_of("-1.5e3"), "\"-1.5e3\"");
  EXPECT_EQ(yaml_of(".inf"), "\".inf\"");
  EXPECT_EQ(yaml_of("02:00:00:00:00:10"), "\"02:00:00:00:00:10\"");  // base 60 in YAML 1.1
  EXPECT_EQ(yaml_of("0x1f"), "\"0x1f\"");
  EXPECT_EQ(yaml_of("a: b"), "\"a: b\"");
  EXPECT_EQ(yaml_of("a #b"), "\"a #b\"");
  EXPECT_EQ(yaml_of("- x"), "\"- x\"");
  EXPECT_EQ(yaml_of("*ref"), "\"*ref\"");
  EXPECT_EQ(yaml_of(" lead"), "\" lead\"");
  EXPECT_EQ(yaml_of("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
  EXPECT_EQ(yaml_of(std::string("a\x01", 2)), "\"a\\x01\"");
}

TEST(Yaml, ScalarsOfEveryKind) {
  v1::HealthCheck h;
  h.set_udp_request("ping");
  h.set_udp_expected_response(std::string("\x00\xff", 2));
  std::string y = to_yaml(h);
  EXPECT_NE(y.find("udp_request: cGluZw==\n"), std::string::npos) << y;
  EXPECT_NE(y.find("udp_expected_response: AP8=\n"), std::string::npos) << y;
  v1::Pop p;
  p.set_latitude(50.03);
  p.set_longitude(-8.5);
  y = to_yaml(p);
  EXPECT_NE(y.find("latitude: 50.03\nlongitude: -8.5\n"), std::string::npos) << y;
}

}  // namespace
}  // namespace onramp::cli
