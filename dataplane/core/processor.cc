#include "dataplane/core/processor.h"

#include "dataplane/core/encap.h"
#include "dataplane/core/icmp.h"
#include "dataplane/core/net_headers.h"
#include "dataplane/core/parser.h"
#include "dataplane/core/trace.h"

namespace onramp::dp {
namespace {

// What stage one learns about a packet for stage two.
struct Work {
  ParsedPacket parsed;
  FlowKey key;
  uint64_t hash;
  uint32_t idle_ms;
  uint16_t listener;
  bool icmp_error;  // an ICMP error following its flow: no new flow state
};

}  // namespace

void PacketProcessor::process_burst(ForwardingTable& table, PacketBuf* pkts, Action* actions,
                                    uint16_t n, const MacAddress& port_mac, uint32_t now_ms) {
  Work work[kMaxBurst];
  uint16_t pending[kMaxBurst];  // packets that reach stage two
  uint16_t n_pending = 0;

  // Stage one: parse and classify every packet, hash its flow and prefetch
  // the flow bucket, so stage two finds it in cache.
  for (uint16_t i = 0; i < n; ++i) {
    PacketBuf& pkt = pkts[i];
    Work& w = work[i];
    actions[i] = Action::drop;
    LcoreStats::bump(stats_.rx_packets);
    LcoreStats::bump(stats_.rx_bytes, pkt.len);
    if (i + 1 < n) __builtin_prefetch(pkts[i + 1].data);

    DropReason reason;
    if (!parse_packet(pkt.data, pkt.len, w.parsed, reason)) {
      count_drop(reason);
      continue;
    }
    const ParsedPacket& p = w.parsed;
    const Vip* vip = table.find_vip(p.dst);
    if (!vip) {
      count_drop(DropReason::non_vip);
      continue;
    }
    if (p.fragment) {
      count_drop(DropReason::fragment);
      continue;
    }
    ParsedPacket flow_view;
    const ParsedPacket* flow = &p;
    w.icmp_error = false;
    if (p.l4_proto == kProtoIcmp || p.l4_proto == kProtoIcmpv6) {
      if (is_echo_request(p)) {
        make_echo_reply(pkt, p, port_mac);
        actions[i] = Action::reply;
        LcoreStats::bump(stats_.echo_replies);
        continue;
      }
      if (!is_path_mtu_error(p)) {
        count_drop(DropReason::icmp_unsupported);
        continue;
      }
      if (!quoted_flow(pkt, p, flow_view) || !(vip = table.find_vip(flow_view.dst))) {
        count_drop(DropReason::icmp_inner_malformed);
        continue;
      }
      flow = &flow_view;
      w.icmp_error = true;
    }
    int li = ForwardingTable::find_listener(*vip, flow->l4_proto, flow->dst_port);
    if (li < 0) {
      count_drop(w.icmp_error ? DropReason::icmp_inner_malformed : DropReason::no_listener);
      continue;
    }
    const Listener& l = table.listener(li);
    w.listener = static_cast<uint16_t>(li);
    w.idle_ms = flow->l4_proto == kProtoTcp ? l.tcp_idle_ms : l.udp_idle_ms;
    w.key = flow_key(flow->src, flow->src_port, flow->dst, flow->dst_port, flow->l4_proto, l);
    w.hash = FlowTable::hash_key(w.key);
    flows_.prefetch(w.hash);
    pending[n_pending++] = i;
  }

  // Stage two: flow lookup, endpoint choice, encapsulation.
  for (uint16_t j = 0; j < n_pending; ++j) {
    uint16_t i = pending[j];
    Work& w = work[i];
    const Listener& l = table.listener(w.listener);
    int ep = -1;
    bool new_flow = false;
    FlowValue* v = flows_.lookup(w.key, w.hash, now_ms, w.idle_ms);
    if (v) {
      ep = v->endpoint_index;
      if (ep >= static_cast<int>(l.endpoints.size()) || l.endpoints[ep].id != v->endpoint_id) {
        // The table changed since the flow was placed: find its endpoint again.
        ep = l.find_endpoint(v->endpoint_id);
      }
      if (ep < 0 || !l.endpoints[ep].keeps_flows()) {
        ep = l.pick(w.hash);
        if (ep >= 0) LcoreStats::bump(stats_.flows_moved);
      }
      if (ep >= 0) *v = FlowValue{l.endpoints[ep].id, static_cast<uint16_t>(ep), 0};
    } else {
      ep = l.pick(w.hash);
      if (ep >= 0 && !w.icmp_error) {
        flows_.insert(w.key, w.hash, FlowValue{l.endpoints[ep].id, static_cast<uint16_t>(ep), 0},
                      now_ms, w.idle_ms);
        new_flow = true;
      }
    }
    if (ep < 0) {
      count_drop(DropReason::no_endpoint);
      continue;
    }
    const Endpoint& e = l.endpoints[ep];
    uint32_t inner_len = w.parsed.ip_len;
    DropReason reason;
    if (!encapsulate(pkts[i], w.parsed, e, table, port_mac, w.hash, reason)) {
      count_drop(reason);
      continue;
    }
    actions[i] = Action::forward;
    LcoreStats::bump(stats_.forwarded);
    if (new_flow) LcoreStats::bump(stats_.new_flows);
    if (w.icmp_error) LcoreStats::bump(stats_.icmp_errors_forwarded);
    table.listener_counters(lcore_, w.listener).add(inner_len, new_flow);
    table.endpoint_counters(lcore_, e).add(inner_len, new_flow);
  }
}

}  // namespace onramp::dp
