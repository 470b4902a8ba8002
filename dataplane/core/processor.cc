#include "dataplane/core/processor.h"

#include "dataplane/core/encap.h"
#include "dataplane/core/icmp.h"
#include "dataplane/core/net_headers.h"
#include "dataplane/core/parser.h"
#include "dataplane/core/relay.h"
#include "dataplane/core/trace.h"

namespace onramp::dp {

// Stage two for one packet: with its first flow-table bucket in cache, fetch
// what stage three will read: the flow's endpoint and its counters when the
// flow is there, else the second bucket and the Maglev slot a new flow
// would take.
//
// It records what it found (Work::first_slot): besides being a hint, the
// store keeps the compiler from treating this function as pure and dropping
// the calls whose result is unused, prefetches and all.
inline void PacketProcessor::peek(Burst& b, uint16_t j) {
  Work& w = b.work[b.pending[j]];
  if (w.frag == kLaterFragment) return;  // no flow to look up
  const uint32_t slot = flows_.peek(w.index_hash);
  w.first_slot = slot;
  const Listener& l = b.table->listener(w.listener);
  if (slot == FlowTable::kNone) {
    l.prefetch_pick(flow_hash(w));
    return;
  }
  const uint16_t ep = flows_.value(slot).endpoint_index;
  if (ep < l.endpoints.size()) {
    __builtin_prefetch(&l.endpoints[ep]);
    b.table->prefetch_endpoint_counters(lcore_, l, ep);
  }
}

namespace {

// What refuses a fragment before its train is looked at; count if nothing.
DropReason check_fragment(const ParsedPacket& p) {
  if (p.frag_offset + FragmentTable::data_len(p) > 0xffff) return DropReason::fragment_oversized;
  const bool ported = p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp;
  if (p.frag_offset == 0) {
    if (!ported) return DropReason::fragment;
    if (!p.frag_l4) return DropReason::fragment_tiny;
  } else if (p.family == 4 && !ported) {
    // (An IPv6 later fragment names no transport protocol: its train does.)
    return DropReason::fragment;
  }
  return DropReason::count;
}

}  // namespace

bool PacketProcessor::track_first_fragment(Work& w, const Listener& l, int ep, uint32_t now_ms) {
  FragmentTrain* t = frag_table_.find(w.parsed, now_ms);
  if (!t) {
    // A duplicate first fragment finds the train it made and overlaps it.
    t = &frag_table_.insert(w.parsed, now_ms);
    t->listener_id = l.id;
    t->listener_index = w.listener;
    t->endpoint_index = static_cast<uint16_t>(ep);
    t->endpoint_id = l.endpoints[ep].id;
    t->flow_hash = flow_hash(w);
  }
  DropReason reason;
  if (!frag_table_.add(*t, w.parsed, now_ms, reason)) {
    count_drop(reason);
    return false;
  }
  return true;
}

Action PacketProcessor::follow_fragment(PacketBuf& pkt, Work& w, ForwardingTable& table,
                                        const TunnelL2& l2, const MacAddress& port_mac,
                                        uint32_t now_ms, ExtraPackets* extra) {
  const ParsedPacket& p = w.parsed;
  FragmentTrain* t = frag_table_.find(p, now_ms);
  if (!t) {
    count_drop(DropReason::fragment_no_first);
    return Action::drop;
  }
  DropReason reason;
  if (!frag_table_.add(*t, p, now_ms, reason)) {
    count_drop(reason);
    return Action::drop;
  }
  // The table may have changed since the first fragment: find its listener
  // and endpoint again by identity. (A train completed by this fragment
  // was freed by add, but its fields still hold.)
  if (t->listener_index >= table.listeners().size() ||
      table.listener(t->listener_index).id != t->listener_id) {
    count_drop(DropReason::no_listener);
    return Action::drop;
  }
  const Listener& l = table.listener(t->listener_index);
  int ep = t->endpoint_index;
  if (ep >= static_cast<int>(l.endpoints.size()) || l.endpoints[ep].id != t->endpoint_id)
    ep = l.find_endpoint(t->endpoint_id);
  if (ep < 0) {
    count_drop(DropReason::no_endpoint);
    return Action::drop;
  }
  const Endpoint& e = l.endpoints[ep];
  w.hash = t->flow_hash;
  w.hashed = true;
  const uint32_t inner_len = p.ip_len;
  if (!encapsulate(pkt, p, e, table, l2, w.hash, reason)) {
    if (reason != DropReason::too_big) {
      count_drop(reason);
      return Action::drop;
    }
    if (const Action a = too_big(pkt, w, e, table, l2, port_mac, now_ms, extra);
        a != Action::forward)
      return a;
  }
  LcoreStats::bump(stats_.fragments_forwarded);
  if (e.relayed) LcoreStats::bump(stats_.relayed_out);
  table.endpoint_counters(lcore_, e).add(inner_len, false);
  return Action::forward;
}

Action PacketProcessor::relay(PacketBuf& pkt, const ParsedPacket& p, const ForwardingTable& table,
                              const MacAddress& next_hop, const MacAddress& port_mac) {
  DropReason reason;
  if (!relay_forward(pkt, p, table, next_hop, port_mac, reason)) {
    count_drop(reason);
    return Action::drop;
  }
  LcoreStats::bump(stats_.forwarded);
  LcoreStats::bump(stats_.relayed_in);
  return Action::forward;
}

void PacketProcessor::classify(int slot, ForwardingTable& table, PacketBuf* pkts, Action* actions,
                               uint16_t n, const MacAddress& port_mac, int also_match) {
  Burst& b = bursts_[slot];
  Burst* m = also_match >= 0 ? &bursts_[also_match] : nullptr;
  uint16_t matched = 0;
  b.table = &table;
  b.pkts = pkts;
  b.actions = actions;
  b.port_mac = &port_mac;
  b.next_hop = table.spec().next_hop_mac;
  // Once a burst: the table's MAC wins; without one, the learned one.
  b.next_hop_unknown = learned_ && b.next_hop == MacAddress{} && !learned_->get(b.next_hop);
  b.l2 = TunnelL2(b.next_hop, port_mac);
  b.matched = false;
  ParsedPacket flow_view;  // an ICMP error's quoted flow
  uint64_t rx_bytes = 0;
  // Counts kept in registers: the packet bytes this loop writes may alias
  // any member, so the compiler would reload and store members every packet.
  const uint16_t to_match = m ? m->n_pending : 0;
  uint16_t n_pending = 0;
  for (uint16_t i = 0; i < n; ++i) {
    if (matched < to_match) peek(*m, matched++);
    PacketBuf& pkt = pkts[i];
    Work& w = b.work[i];
    actions[i] = Action::drop;
    rx_bytes += pkt.len;
    if (i + 1 < n) __builtin_prefetch(pkts[i + 1].data);

    DropReason reason;
    if (!parse_packet_fast(pkt.data, pkt.len, w.parsed, reason)) {
      // ARP, LLDP, ...: the kernel's, when it has an exception interface.
      if (reason == DropReason::non_ip)
        not_ours(actions[i], reason);
      else
        count_drop(reason);
      continue;
    }
    const ParsedPacket& p = w.parsed;
    const Vip* vip = table.find_vip(p.dst);
    if (!vip) {
      if (is_relay_bound(p, table) && b.next_hop_unknown)
        count_drop(DropReason::next_hop_unresolved);
      else if (is_relay_bound(p, table))
        actions[i] = relay(pkt, p, table, b.next_hop, port_mac);
      else
        not_ours(actions[i], DropReason::non_vip);
      continue;
    }
    // The bucket of the packet's own five-tuple, fetched before its listener
    // is known: that is the flow key of every listener without source-IP
    // affinity, and the sooner the fetch leaves, the less of its wait (a
    // page walk where the table's pages miss the TLB) the core sits out.
    const bool own_key = !p.fragment && (p.l4_proto == kProtoTcp || p.l4_proto == kProtoUdp);
    uint64_t own_index = 0;
    if (own_key) {
      set_flow_key(w.key, p.src, p.src_port, p.dst, p.dst_port, p.l4_proto, Affinity::none, 0);
      own_index = FlowTable::index_hash(w.key, p.family == 4);
      flows_.prefetch(own_index);
    }
    // Loop protection: the PoP's own encapsulated traffic, routed back to a
    // VIP (an endpoint that forwards to a VIP, a route pointing home), is
    // never encapsulated again.
    if (table.is_tunnel_source(p.src)) {
      count_drop(DropReason::own_tunnel_source);
      continue;
    }
    w.icmp_error = false;
    w.frag = kWhole;
    w.tcp = kNotTcp;
    w.fin_rst = FlowEndReason::none;
    if (p.fragment) {
      if (const DropReason r = check_fragment(p); r != DropReason::count) {
        count_drop(r);
        continue;
      }
      if (p.frag_offset != 0) {
        w.frag = kLaterFragment;  // its train decides, in stage three
        b.pending[n_pending++] = i;
        continue;
      }
      w.frag = kFirstFragment;  // holds the ports: classified as a whole packet
    }
    if (p.l4_proto == kProtoTcp) {
      // The parser saw the whole TCP header (of a first fragment too).
      const uint8_t flags = pkt.data[p.l4_offset + 13];
      w.tcp = !(flags & kTcpFlagSyn) ? kTcpEstablished : !(flags & kTcpFlagAck) ? kTcpSyn : kNotTcp;
      if (flags & (kTcpFlagFin | kTcpFlagRst))
        w.fin_rst = flags & kTcpFlagRst ? FlowEndReason::rst : FlowEndReason::fin;
    }
    const ParsedPacket* flow = &p;
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
    const PortRangeEntry* r = ForwardingTable::find_range(*vip, flow->l4_proto, flow->dst_port);
    if (!r) {
      count_drop(w.icmp_error ? DropReason::icmp_inner_malformed : DropReason::no_listener);
      continue;
    }
    w.listener = r->listener;
    table.prefetch_listener(r->listener);
    w.idle_ms = flow->l4_proto == kProtoTcp ? r->tcp_idle_ms : r->udp_idle_ms;
    w.log_ppm = r->flow_log_ppm;
    w.key_v4 = flow->family == 4;
    w.hashed = false;
    if (own_key && flow == &p && r->affinity == Affinity::none) {
      w.index_hash = own_index;  // the key made above
    } else {
      set_flow_key(w.key, flow->src, flow->src_port, flow->dst, flow->dst_port, flow->l4_proto,
                   r->affinity, r->listener_id);
      w.index_hash = FlowTable::index_hash(w.key, w.key_v4);
      flows_.prefetch(w.index_hash);
    }
    // Needed for sure, or likely (a SYN is most often a new flow, which
    // Maglev places): computed here, its chain overlaps other packets' work.
    if (r->flow_hash_early || w.tcp == kTcpSyn) flow_hash(w);
    b.pending[n_pending++] = i;
  }
  b.n_pending = n_pending;
  while (matched < to_match) peek(*m, matched++);
  if (m) m->matched = true;
  LcoreStats::bump(stats_.rx_packets, n);
  LcoreStats::bump(stats_.rx_bytes, rx_bytes);
}

void PacketProcessor::match(int slot) {
  Burst& b = bursts_[slot];
  for (uint16_t j = 0; j < b.n_pending; ++j) peek(b, j);
  b.matched = true;
}

Action PacketProcessor::too_big(PacketBuf& pkt, Work& w, const Endpoint& e,
                                const ForwardingTable& table, const TunnelL2& l2,
                                const MacAddress& port_mac, uint32_t now_ms, ExtraPackets* extra) {
  ParsedPacket& p = w.parsed;
  // An ICMP error about an ICMP error is never sent (RFC 1122 §3.2.2,
  // RFC 4443 §2.4 (e)); one too big to forward is dropped.
  if (w.icmp_error) {
    count_drop(DropReason::too_big);
    return Action::drop;
  }
  const uint32_t fit = inner_mtu(table.spec().mtu, encap_overhead(e));
  const bool df = p.family == 6 || (pkt.data[p.l3_offset + 6] & 0x40);
  if (df) {
    if (!icmp_limiter_.allow(p.src, now_ms)) {
      count_drop(DropReason::too_big_rate_limited);
      return Action::drop;
    }
    if (!make_too_big(pkt, p, fit, port_mac)) {
      count_drop(DropReason::no_headroom);
      return Action::drop;
    }
    LcoreStats::bump(stats_.icmp_too_big_sent);
    return Action::icmp_error;
  }
  if (!extra) {
    count_drop(DropReason::too_big);
    return Action::drop;
  }
  const int n = fragment_ipv4(pkt, p, fit, *extra, frags_.get(), frag_parsed_.get());
  if (n < 0) {
    extra->rollback();
    count_drop(DropReason::fragment_no_buffer);
    return Action::drop;
  }
  DropReason reason = DropReason::no_headroom;
  const uint64_t hash = flow_hash(w);
  bool ok = encapsulate(pkt, p, e, table, l2, hash, reason);
  for (int k = 0; ok && k < n; ++k)
    ok = encapsulate(*frags_[k], frag_parsed_[k], e, table, l2, hash, reason);
  if (!ok) {
    extra->rollback();
    count_drop(reason);
    return Action::drop;
  }
  extra->commit();
  LcoreStats::bump(stats_.fragmented);
  LcoreStats::bump(stats_.fragments_sent, static_cast<uint64_t>(n));
  return Action::forward;
}

void PacketProcessor::log_packet(const Work& w, uint32_t slot, bool new_flow, uint32_t listener_id,
                                 const Endpoint& e, uint32_t len, uint32_t now_ms) {
  if (log_->active(slot)) {
    log_->packet(slot, e.id, e.address, len, w.fin_rst, now_ms);
    return;
  }
  // Not logged yet: a new flow, or a new connection (a SYN) of a flow the
  // table still held (one that ended with FIN or RST, or began before its
  // listener's flow logs were on). Anything else is left out until then.
  if (!new_flow && w.tcp != kTcpSyn) return;
  const ParsedPacket& p = w.parsed;
  log_->start(slot, p.src, p.src_port, p.dst, p.dst_port, p.l4_proto, listener_id, e.id, e.address,
              len, now_ms);
  if (w.fin_rst != FlowEndReason::none) log_->end(slot, w.fin_rst, e.id);
}

int PacketProcessor::own_connection(Work& w, const Listener& l, uint32_t now_ms, bool& new_flow) {
  const ParsedPacket& p = w.parsed;
  FlowKey key;
  set_flow_key(key, p.src, p.src_port, p.dst, p.dst_port, p.l4_proto, Affinity::none, l.id);
  const uint64_t hash = FlowTable::index_hash(key, w.key_v4);
  const uint32_t slot = flows_.lookup(hash, now_ms, w.idle_ms);
  if (slot != FlowTable::kNone) {
    const FlowValue v = flows_.value(slot);
    const int ep = l.find_endpoint(v.endpoint_id);
    if (ep >= 0 && l.endpoints[ep].keeps_flows() && w.tcp != kTcpSyn) {
      const bool established = w.tcp == kNotTcp ? v.established : w.tcp == kTcpEstablished;
      flows_.update_value(slot, v,
                          FlowValue{v.endpoint_id, static_cast<uint16_t>(ep), established});
      return ep;
    }
  }
  if (w.tcp != kTcpSyn) return -1;  // the client's entry decides
  // A new connection goes where its client goes once the drain is over.
  const int ep = l.pick(flow_hash(w));
  if (ep < 0) return -1;
  const FlowValue v{l.endpoints[ep].id, static_cast<uint16_t>(ep), false};
  if (slot != FlowTable::kNone) {
    flows_.set_value(slot, v);  // a SYN on a port reused: the connection is new
  } else {
    const FlowTable::Placed placed = flows_.insert(key, hash, v, now_ms, w.idle_ms);
    if (log_) log_->replaced(placed);
    new_flow = true;
  }
  return ep;
}

void PacketProcessor::finish(int slot, uint32_t now_ms, ExtraPackets* extra) {
  Burst& b = bursts_[slot];
  if (b.next_hop_unknown) {
    // Nowhere to send its tunnel packets: nothing of it is forwarded, and
    // no flow is placed for it.
    count_drop(DropReason::next_hop_unresolved, b.n_pending);
    b.n_pending = 0;
    b.matched = true;
    return;
  }
  if (!b.matched) match(slot);  // a burst finished without a next one
  ForwardingTable& table = *b.table;
  // Counted here, added to the lcore's totals once a burst.
  uint64_t forwarded = 0, new_flows = 0, moved = 0, drained = 0, icmp_forwarded = 0,
           relayed_out = 0;
  // Read once a burst: flow logs off cost one register test a packet.
  FlowLog* const log = log_.get();
  const uint16_t n_pending = b.n_pending;
  for (uint16_t j = 0; j < n_pending; ++j) {
    uint16_t i = b.pending[j];
    Work& w = b.work[i];
    if (w.frag == kLaterFragment) {
      b.actions[i] = follow_fragment(b.pkts[i], w, table, b.l2, *b.port_mac, now_ms, extra);
      forwarded += b.actions[i] == Action::forward;
      continue;
    }
    const Listener& l = table.listener(w.listener);
    int ep = -1;
    bool new_flow = false;
    uint32_t flow_slot = FlowTable::kNone;
    const uint32_t slot = flows_.lookup(w.index_hash, now_ms, w.idle_ms, w.first_slot);
    if (slot != FlowTable::kNone) {
      flow_slot = slot;
      const FlowValue v = flows_.value(slot);
      // Established once a packet without SYN was seen, until a new SYN.
      const bool established = w.tcp == kNotTcp ? v.established : w.tcp == kTcpEstablished;
      ep = v.endpoint_index;
      if (ep >= static_cast<int>(l.endpoints.size()) || l.endpoints[ep].id != v.endpoint_id) {
        // The table changed since the flow was placed: find its endpoint again.
        ep = l.find_endpoint(v.endpoint_id);
      }
      // A flow whose endpoint is gone moves; one whose endpoint is
      // unhealthy moves too, unless it is an established TCP flow and the
      // endpoint's drain is still running (a SYN, a UDP flow, or a flow
      // whose endpoint was removed re-chooses at once). A client under
      // source-IP affinity whose endpoint drains keeps its entry there for
      // its established connections; its new ones get entries of their own
      // (own_connection).
      bool own = false;
      if (ep < 0 || !l.endpoints[ep].keeps_flows()) {
        const bool draining = ep >= 0 && l.endpoints[ep].draining(now_ms);
        const int mine = draining && w.key.kind == FlowKind::source_ip && !w.icmp_error
                             ? own_connection(w, l, now_ms, new_flow)
                             : -1;
        if (mine >= 0) {
          ep = mine;
          own = true;
        } else if (draining && established) {
          ++drained;
        } else {
          ep = l.pick(flow_hash(w));
          if (ep >= 0) ++moved;
        }
      }
      if (!own && ep >= 0)
        flows_.update_value(slot, v,
                            FlowValue{l.endpoints[ep].id, static_cast<uint16_t>(ep), established});
    } else {
      ep = l.pick(flow_hash(w));
      if (ep >= 0 && !w.icmp_error) {
        // A flow first seen past its handshake (its connection began
        // before this PoP saw it) is established from its first packet.
        const FlowTable::Placed placed = flows_.insert(
            w.key, w.index_hash,
            FlowValue{l.endpoints[ep].id, static_cast<uint16_t>(ep), w.tcp == kTcpEstablished},
            now_ms, w.idle_ms);
        if (log) log->replaced(placed);
        flow_slot = placed.slot;
        new_flow = true;
      }
    }
    if (ep < 0) {
      count_drop(DropReason::no_endpoint);
      continue;
    }
    if (w.frag == kFirstFragment && !track_first_fragment(w, l, ep, now_ms)) continue;
    const Endpoint& e = l.endpoints[ep];
    uint32_t inner_len = w.parsed.ip_len;
    DropReason reason;
    if (!encapsulate(b.pkts[i], w.parsed, e, table, b.l2, uses_flow_hash(e) ? flow_hash(w) : 0,
                     reason)) {
      if (reason != DropReason::too_big) {
        count_drop(reason);
        continue;
      }
      const Action a = too_big(b.pkts[i], w, e, table, b.l2, *b.port_mac, now_ms, extra);
      b.actions[i] = a;
      if (a != Action::forward) continue;
    }
    b.actions[i] = Action::forward;
    ++forwarded;
    if (w.frag) LcoreStats::bump(stats_.fragments_forwarded);
    new_flows += new_flow;
    icmp_forwarded += w.icmp_error;
    relayed_out += e.relayed;
    table.endpoint_counters(lcore_, e).add(inner_len, new_flow);
    // The sample is decided from the hash before any flow log state is read:
    // flows outside it cost one comparison.
    if (log && w.log_ppm && flow_slot != FlowTable::kNone && !w.icmp_error &&
        FlowLog::sampled(flow_hash(w), w.log_ppm))
      log_packet(w, flow_slot, new_flow, l.id, e, inner_len, now_ms);
  }
  b.n_pending = 0;
  LcoreStats::bump(stats_.forwarded, forwarded);
  if (new_flows) LcoreStats::bump(stats_.new_flows, new_flows);
  if (moved) LcoreStats::bump(stats_.flows_moved, moved);
  if (drained) LcoreStats::bump(stats_.drained_packets, drained);
  if (icmp_forwarded) LcoreStats::bump(stats_.icmp_errors_forwarded, icmp_forwarded);
  if (relayed_out) LcoreStats::bump(stats_.relayed_out, relayed_out);
}

}  // namespace onramp::dp
