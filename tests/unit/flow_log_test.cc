// Flow logs in the packet core: the ring counts what it cannot take, the
// sample is a function of the flow hash, and a flow through the processor
// leaves a start and an end record whose counts add up to what it sent.
#include "dataplane/core/flow_log.h"

#include <gtest/gtest.h>

#include <vector>

#include "dataplane/core/processor.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

using dp::FlowEndReason;
using dp::FlowLog;
using dp::FlowLogEvent;
using dp::FlowLogRecord;
using dp::FlowLogRing;

std::vector<FlowLogRecord> drain(FlowLogRing& ring) {
  std::vector<FlowLogRecord> out(ring.capacity());
  out.resize(ring.pop(out.data(), out.size()));
  return out;
}

TEST(FlowLogRing, AFullRingRefusesAndKeepsWhatItHas) {
  FlowLogRing ring(4);
  EXPECT_EQ(ring.capacity(), 4u);
  FlowLogRecord r;
  for (uint32_t i = 0; i < 4; ++i) {
    r.packets = i;
    EXPECT_TRUE(ring.push(r));
  }
  EXPECT_FALSE(ring.push(r));
  FlowLogRecord out[3];
  ASSERT_EQ(ring.pop(out, 3), 3u);
  EXPECT_EQ(out[0].packets, 0u);
  EXPECT_EQ(out[2].packets, 2u);
  EXPECT_TRUE(ring.push(r));  // room again, past the wrap
  auto rest = drain(ring);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].packets, 3u);
}

TEST(FlowLog, OverflowIsCountedNeverBlocks) {
  FlowLog log(64, 2, 60000);
  for (uint32_t slot = 0; slot < 5; ++slot)
    log.start(slot, ip("192.0.2.7"), 1000, ip("203.0.113.10"), 80, 6, 1, 2, ip("198.51.100.1"), 60,
              0);
  EXPECT_EQ(log.stats().records.load(), 2u);
  EXPECT_EQ(log.stats().dropped.load(), 3u);
  EXPECT_EQ(log.stats().logged_flows.load(), 5u);
}

TEST(FlowLog, SampleIsAFunctionOfTheHashAndNearItsShare) {
  uint32_t in_one_percent = 0;
  for (uint64_t i = 0; i < 100000; ++i) {
    const uint64_t h = dp::hash_mix(i);
    EXPECT_FALSE(FlowLog::sampled(h, 0));
    EXPECT_TRUE(FlowLog::sampled(h, 1000000));
    in_one_percent += FlowLog::sampled(h, 10000);
    // A flow in a smaller sample is in every larger one.
    if (FlowLog::sampled(h, 100)) {
      EXPECT_TRUE(FlowLog::sampled(h, 10000));
    }
  }
  EXPECT_GT(in_one_percent, 900u);
  EXPECT_LT(in_one_percent, 1100u);
}

TEST(FlowLog, WindowRecordsSplitALongFlow) {
  FlowLog log(64, 64, 1000);
  log.start(3, ip("192.0.2.7"), 1000, ip("203.0.113.10"), 80, 17, 1, 2, ip("198.51.100.1"), 100, 0);
  log.packet(3, 2, ip("198.51.100.1"), 100, FlowEndReason::none, 500);
  log.packet(3, 2, ip("198.51.100.1"), 100, FlowEndReason::none, 1200);  // window over
  log.packet(3, 2, ip("198.51.100.1"), 100, FlowEndReason::none, 1300);
  log.end(3, FlowEndReason::idle, 2);
  auto r = drain(log.ring());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].event, FlowLogEvent::start);
  EXPECT_EQ(r[1].event, FlowLogEvent::window);
  EXPECT_EQ(r[1].packets, 2u);
  EXPECT_EQ(r[1].first_ms, 0u);  // the window begins at the start record
  EXPECT_EQ(r[1].last_ms, 1200u);
  EXPECT_EQ(r[2].event, FlowLogEvent::end);
  EXPECT_EQ(r[2].reason, FlowEndReason::idle);
  EXPECT_FALSE(r[2].has_endpoint);
  EXPECT_EQ(r[2].endpoint_id, 2u);
  EXPECT_EQ(r[2].packets, 1u);
  EXPECT_EQ(r[2].bytes, 100u);
  EXPECT_FALSE(log.active(3));
}

// Through the processor: one table listener with every flow logged.
TableSpec logged_spec(uint32_t ppm) {
  return TableSpec{
      .version = 1,
      .pop = "FRA1",
      .tunnel_source_v4 = ip("192.0.2.1"),
      .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
      .listeners = {ListenerSpec{.name = "web/http",
                                 .vips = {ip("203.0.113.10")},
                                 .protocol = Protocol::tcp_udp,
                                 .port_ranges = {{80, 80}},
                                 .endpoints = {EndpointSpec{.address = ip("198.51.100.1")}},
                                 .flow_log_sample_ppm = ppm}},
  };
}

Bytes tcp_packet(uint16_t sport, uint8_t flags) {
  return cat(ether(0x0800), ipv4("192.0.2.7", "203.0.113.10", 6, tcp(sport, 80, flags)));
}

TEST(FlowLogProcessor, AFlowLeavesAStartAndAnEndRecordThatAddUp) {
  auto table = build_table(logged_spec(1000000));
  dp::PacketProcessor proc(0, 1024, false, 64, 60000);
  ASSERT_NE(proc.flow_log(), nullptr);
  const Bytes syn = tcp_packet(40000, 0x02), ack = tcp_packet(40000, 0x10),
              fin = tcp_packet(40000, 0x11), after = tcp_packet(40000, 0x10);
  EXPECT_EQ(run_frame(proc, *table, syn, 10).action, dp::Action::forward);
  EXPECT_EQ(run_frame(proc, *table, ack, 20).action, dp::Action::forward);
  EXPECT_EQ(run_frame(proc, *table, ack, 30).action, dp::Action::forward);
  EXPECT_EQ(run_frame(proc, *table, fin, 40).action, dp::Action::forward);
  EXPECT_EQ(run_frame(proc, *table, after, 50).action,
            dp::Action::forward);  // after the end: not logged
  auto r = drain(proc.flow_log()->ring());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].event, FlowLogEvent::start);
  EXPECT_EQ(r[0].client.to_string(), "192.0.2.7");
  EXPECT_EQ(r[0].client_port, 40000);
  EXPECT_EQ(r[0].vip.to_string(), "203.0.113.10");
  EXPECT_EQ(r[0].vip_port, 80);
  EXPECT_EQ(r[0].proto, 6);
  ASSERT_TRUE(r[0].has_endpoint);
  EXPECT_EQ(r[0].endpoint.to_string(), "198.51.100.1");
  EXPECT_EQ(r[0].listener_id, table->listener(0).id);
  EXPECT_EQ(r[0].packets, 1u);
  EXPECT_EQ(r[0].bytes, syn.size() - 14);  // IP bytes
  EXPECT_EQ(r[0].first_ms, 10u);
  EXPECT_EQ(r[1].event, FlowLogEvent::end);
  EXPECT_EQ(r[1].reason, FlowEndReason::fin);
  EXPECT_EQ(r[1].packets, 3u);
  EXPECT_EQ(r[1].bytes, 3 * (ack.size() - 14));
  EXPECT_EQ(r[1].first_ms, 10u);
  EXPECT_EQ(r[1].last_ms, 40u);
  EXPECT_EQ(r[0].packets + r[1].packets, 4u);
}

TEST(FlowLogProcessor, AnIdleFlowEndsAtTheSweep) {
  auto table = build_table(logged_spec(1000000));
  dp::PacketProcessor proc(0, 1024, false, 64, 60000);
  const Bytes datagram =
      cat(ether(0x0800), ipv4("192.0.2.8", "203.0.113.10", 17, udp(5353, 80, 10)));
  run_frame(proc, *table, datagram, 100);
  run_frame(proc, *table, datagram, 200);
  proc.sweep_flow_logs(1000, 1024);  // still live: nothing
  EXPECT_EQ(drain(proc.flow_log()->ring()).size(), 1u);
  proc.sweep_flow_logs(200 + 31000, 1024);  // past the 30 s UDP idle timeout
  auto r = drain(proc.flow_log()->ring());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].event, FlowLogEvent::end);
  EXPECT_EQ(r[0].reason, FlowEndReason::idle);
  EXPECT_EQ(r[0].packets, 1u);
  EXPECT_EQ(r[0].last_ms, 200u);
  EXPECT_EQ(r[0].endpoint_id, table->listener(0).endpoints[0].id);
}

TEST(FlowLogProcessor, NothingIsLoggedOutsideTheSampleOrWithoutFlowLogs) {
  auto off = build_table(logged_spec(0));
  dp::PacketProcessor proc(0, 1024, false, 64, 60000);
  for (uint16_t port = 1; port <= 200; ++port) run_frame(proc, *off, tcp_packet(port, 0x02), 0);
  EXPECT_EQ(proc.flow_log()->stats().logged_flows.load(), 0u);

  // At 1 %, exactly the flows whose hash says so, on any processor alike.
  auto one = build_table(logged_spec(10000));
  dp::PacketProcessor a(0, 4096, false, 4096, 60000), b(1, 4096, false, 4096, 60000);
  for (uint16_t port = 1; port <= 2000; ++port) {
    run_frame(a, *one, tcp_packet(port, 0x02), 0);
    run_frame(b, *one, tcp_packet(port, 0x02), 0);
  }
  auto ra = drain(a.flow_log()->ring()), rb = drain(b.flow_log()->ring());
  EXPECT_GT(ra.size(), 5u);
  EXPECT_LT(ra.size(), 60u);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].client_port, rb[i].client_port);

  dp::PacketProcessor none(0, 1024);  // a dataplane without flow logs
  EXPECT_EQ(none.flow_log(), nullptr);
  EXPECT_EQ(run_frame(none, *one, tcp_packet(7, 0x02), 0).action, dp::Action::forward);
}

}  // namespace
}  // namespace onramp::test
