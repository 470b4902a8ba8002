// The per-lcore packet pipeline: parse, classify, flow lookup, endpoint choice,
// rewrite. It owns its lcore's flow table and counters and touches nothing
// shared but the (immutable) forwarding table. Knows nothing of DPDK: it takes
// PacketBufs and returns one Action per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/encap.h"
#include "dataplane/core/flow_log.h"
#include "dataplane/core/flow_table.h"
#include "dataplane/core/forwarding_table.h"
#include "dataplane/core/fragment_table.h"
#include "dataplane/core/next_hop.h"
#include "dataplane/core/packet_buf.h"
#include "dataplane/core/parser.h"
#include "dataplane/core/pmtu.h"

namespace onramp::dp {

// Per-lcore totals. Single writer (relaxed load + store), any reader.
struct LcoreStats {
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> echo_replies{0};
  std::atomic<uint64_t> icmp_errors_forwarded{0};
  // Packets too big for their tunnel answered with an ICMP frag-needed /
  // packet-too-big from the PoP (Action::icmp_error).
  std::atomic<uint64_t> icmp_too_big_sent{0};
  // IPv4 packets without DF split to fit their tunnel (each also counted
  // in forwarded, as its first fragment), and the further fragments sent.
  std::atomic<uint64_t> fragmented{0};
  std::atomic<uint64_t> fragments_sent{0};
  // Fragments to a VIP forwarded, first and later ones (also in forwarded).
  std::atomic<uint64_t> fragments_forwarded{0};
  std::atomic<uint64_t> new_flows{0};
  // Existing flows whose endpoint left the table or became unhealthy, sent
  // to a new endpoint.
  std::atomic<uint64_t> flows_moved{0};
  // Packets of established TCP flows sent on to their unhealthy endpoint
  // during its drain (Endpoint::draining) instead of moving.
  std::atomic<uint64_t> drained_packets{0};
  // Packets sent to an endpoint over a relay PoP (relayed_out), and relayed
  // packets from a peer PoP sent on to their endpoint (relayed_in); both
  // also counted in forwarded.
  std::atomic<uint64_t> relayed_out{0};
  std::atomic<uint64_t> relayed_in{0};
  // Packets not for a VIP handed to the exception path (Action::exception),
  // less those its ring refused (exception_ring_full drops).
  std::atomic<uint64_t> to_exception{0};
  std::atomic<uint64_t> drops[kDropReasonCount]{};

  static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t dropped() const {
    uint64_t n = 0;
    for (const auto& d : drops) n += d.load(std::memory_order_relaxed);
    return n;
  }
};

class PacketProcessor {
 public:
  static constexpr uint16_t kMaxBurst = 64;
  // Bursts that can be in flight at once (see classify).
  static constexpr int kSlots = 2;

  // keep_flow_keys: keep each flow's key, so that flows can be listed
  // (FlowTable::for_each_live), at 40 bytes a flow.
  // flow_log_ring: records the flow log ring holds (0: no flow logs, and no
  // memory for them); flow_log_window_ms: the capture window of long flows.
  PacketProcessor(unsigned lcore, uint32_t flow_capacity, bool keep_flow_keys = false,
                  uint32_t flow_log_ring = 0, uint32_t flow_log_window_ms = 0)
      : lcore_(lcore), flows_(flow_capacity, keep_flow_keys) {
    if (flow_log_ring)
      log_ = std::make_unique<FlowLog>(flows_.capacity(), flow_log_ring, flow_log_window_ms);
  }

  // Processes up to kMaxBurst packets that arrived on a port whose MAC is
  // port_mac. now_ms: a millisecond clock (wraps), for idle timeouts.
  // The three stages below, one after the other.
  // extra: lends buffers for fragments; without it an IPv4 packet too big
  // for its tunnel and without DF is dropped as too_big.
  void process_burst(ForwardingTable& table, PacketBuf* pkts, Action* actions, uint16_t n,
                     const MacAddress& port_mac, uint32_t now_ms, ExtraPackets* extra = nullptr) {
    classify(0, table, pkts, actions, n, port_mac);
    match(0);
    finish(0, now_ms, extra);
  }

  // The same in three stages, so that the DPDK worker can overlap two
  // bursts: classify(next, ..., previous) then finish(previous). Each
  // flow-table line then has a burst's worth of work to arrive in, and the
  // prefetches are spread over that work rather than issued together (the
  // core tracks only so many misses at once; a prefetch beyond that stalls).
  //
  // Stage one: parse and classify the burst, build and hash its flow keys,
  // prefetch their flow-table buckets; echo requests are answered here.
  // `slot` (0..kSlots-1) holds the burst's state until finish; pkts,
  // actions, table and port_mac must stay valid until then. With
  // also_match >= 0, stage two of the burst in that slot runs in the same
  // loop, a packet of it after each packet of this one.
  void classify(int slot, ForwardingTable& table, PacketBuf* pkts, Action* actions, uint16_t n,
                const MacAddress& port_mac, int also_match = -1);
  // Stage two: with the flows' first buckets in cache, prefetch what stage
  // three will read (the second bucket, the endpoint, the Maglev slot).
  void match(int slot);
  // Stage three: look the flows up, place new ones, encapsulate (after
  // stage two, if that has not run). Every action of the burst is final
  // after this; fragments beyond the first of a split packet are committed
  // to `extra` (see process_burst).
  void finish(int slot, uint32_t now_ms, ExtraPackets* extra = nullptr);

  // With the exception path on, what is not for a VIP (non_ip, non_vip) is
  // handed to the kernel (Action::exception) instead of dropped. Off by
  // default.
  void set_exception_path(bool on) { exception_ = on; }
  // Where the next hop's MAC comes from when the table names none (its
  // next_hop_mac is all zeros): this learned one, and while it is unresolved
  // what would be encapsulated is dropped (next_hop_unresolved). Without it
  // the table's MAC is used as it is. The table's MAC, when set, wins.
  void set_learned_next_hop(const LearnedNextHop* learned) { learned_ = learned; }

  void count_drop(DropReason r, uint64_t n = 1) {
    LcoreStats::bump(stats_.drops[static_cast<int>(r)], n);
  }
  // A packet the shell dropped before the core saw it (it still counts as
  // received, so the books balance).
  void count_unprocessed(uint32_t bytes, DropReason r) {
    LcoreStats::bump(stats_.rx_packets);
    LcoreStats::bump(stats_.rx_bytes, bytes);
    count_drop(r);
  }
  // A packet process_burst sent on (forward or reply) that the TX queue then
  // refused: it becomes a tx_full drop, so forwarded + replies + drops
  // always add up to what was received.
  void count_tx_refused(Action a) {
    auto& sent = a == Action::reply        ? stats_.echo_replies
                 : a == Action::icmp_error ? stats_.icmp_too_big_sent
                                           : stats_.forwarded;
    sent.store(sent.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    count_drop(DropReason::tx_full);
  }
  // Packets for the exception path that its ring refused: dropped.
  void count_exception_refused(uint64_t n) {
    stats_.to_exception.store(stats_.to_exception.load(std::memory_order_relaxed) - n,
                              std::memory_order_relaxed);
    count_drop(DropReason::exception_ring_full, n);
  }
  // Fragments beyond the first that the TX queue refused: no longer sent.
  void count_fragments_refused(uint64_t n) {
    stats_.fragments_sent.store(stats_.fragments_sent.load(std::memory_order_relaxed) - n,
                                std::memory_order_relaxed);
  }
  // Flow logs of flows that idled out: looks at words x 64 flow slots, a
  // slice of the table each call (between bursts).
  void sweep_flow_logs(uint32_t now_ms, uint32_t words) {
    if (log_) log_->sweep(flows_, now_ms, words);
  }
  // This lcore's flow logs; null without them.
  FlowLog* flow_log() { return log_.get(); }
  const FlowLog* flow_log() const { return log_.get(); }
  const LcoreStats& stats() const { return stats_; }
  const FlowTable& flows() const { return flows_; }
  const FragmentTable& fragment_trains() const { return frag_table_; }
  unsigned lcore() const { return lcore_; }

 private:
  // What stage one learns about a packet for the later stages.
  struct Work {
    ParsedPacket parsed;
    FlowKey key;
    uint64_t index_hash;  // where the flow sits in flows_ (FlowTable::index_hash)
    uint64_t hash;        // the flow hash, once flow_hash has computed it
    bool hashed;          // whether `hash` holds it
    bool key_v4;          // the key's client is an IPv4 address
    uint32_t idle_ms;
    uint32_t first_slot;  // stage two: the flow's slot in its first bucket, or kNone
    uint16_t listener;
    bool icmp_error;        // an ICMP error following its flow: no new flow state
    uint8_t frag;           // kWhole, kFirstFragment or kLaterFragment
    uint8_t tcp;            // kNotTcp, kTcpSyn or kTcpEstablished
    FlowEndReason fin_rst;  // a TCP FIN or RST: the flow's end, for flow logs
    uint32_t log_ppm;       // the listener's flow log sample
  };
  // What a packet says of its flow's handshake: nothing (UDP, an ICMP error,
  // a SYN-ACK), a SYN without ACK (a connect, or its retry: the flow is not
  // established), or a TCP packet without SYN (the flow is established).
  static constexpr uint8_t kNotTcp = 0;
  static constexpr uint8_t kTcpSyn = 1;
  static constexpr uint8_t kTcpEstablished = 2;
  static constexpr uint8_t kWhole = 0;
  static constexpr uint8_t kFirstFragment = 1;  // picks the endpoint, records the train
  static constexpr uint8_t kLaterFragment = 2;  // follows its train: no flow lookup
  // One burst between its stages. Lives in the processor, allocated once:
  // nothing per burst is zeroed or allocated.
  struct Burst {
    Work work[kMaxBurst];
    uint16_t pending[kMaxBurst];  // packets that go on to stages two and three
    uint16_t n_pending = 0;
    bool matched = false;  // stage two done
    ForwardingTable* table = nullptr;
    PacketBuf* pkts = nullptr;
    Action* actions = nullptr;
    const MacAddress* port_mac = nullptr;
    MacAddress next_hop{};          // destination MAC of its tunnel packets
    bool next_hop_unknown = false;  // learning on, nothing learned yet
    TunnelL2 l2;                    // its tunnel packets' Ethernet header
  };

  // The flow hash (Maglev's choice, tunnel entropy, flow log samples),
  // computed the first time a packet needs it: an established flow to an
  // endpoint whose tunnel carries no entropy never does.
  static uint64_t flow_hash(Work& w) {
    if (!w.hashed) {
      w.hash = w.key_v4 ? FlowTable::hash_key_v4(w.key) : FlowTable::hash_key(w.key);
      w.hashed = true;
    }
    return w.hash;
  }
  void peek(Burst& b, uint16_t j);
  // A packet of a client under source-IP affinity whose endpoint is
  // draining (finish): the endpoint of its connection's own entry (a
  // five-tuple key, on a healthy endpoint), or for a SYN the endpoint the
  // client will move to, recorded in such an entry (new_flow set when
  // placed); -1 otherwise, and the client's entry decides.
  [[gnu::noinline]] int own_connection(Work& w, const Listener& l, uint32_t now_ms, bool& new_flow);
  // A packet to this PoP's relay port (relay.h): forwarded or dropped, and
  // counted.
  [[gnu::noinline]] Action relay(PacketBuf& pkt, const ParsedPacket& p,
                                 const ForwardingTable& table, const MacAddress& next_hop,
                                 const MacAddress& port_mac);
  // A packet too big for endpoint `e`'s tunnel: the ICMP error back, or its
  // fragments encapsulated. Returns the packet's action; counts it.
  Action too_big(PacketBuf& pkt, Work& w, const Endpoint& e, const ForwardingTable& table,
                 const TunnelL2& l2, const MacAddress& port_mac, uint32_t now_ms,
                 ExtraPackets* extra);
  // A first fragment sent to endpoint `ep` of listener `l`: records its
  // train. False (counted) when it must be dropped.
  bool track_first_fragment(Work& w, const Listener& l, int ep, uint32_t now_ms);
  // A later fragment: to its train's endpoint. Returns its action; counts it.
  Action follow_fragment(PacketBuf& pkt, Work& w, ForwardingTable& table, const TunnelL2& l2,
                         const MacAddress& port_mac, uint32_t now_ms, ExtraPackets* extra);
  // Not for a VIP: to the exception path when it is on, else dropped.
  void not_ours(Action& action, DropReason reason) {
    if (exception_) {
      action = Action::exception;
      LcoreStats::bump(stats_.to_exception);
    } else {
      count_drop(reason);
    }
  }

  // A forwarded packet of a flow in the flow log sample (log_, w.log_ppm).
  void log_packet(const Work& w, uint32_t slot, bool new_flow, uint32_t listener_id,
                  const Endpoint& e, uint32_t len, uint32_t now_ms);

  unsigned lcore_;
  bool exception_ = false;
  const LearnedNextHop* learned_ = nullptr;
  FlowTable flows_;
  std::unique_ptr<FlowLog> log_;
  LcoreStats stats_;
  std::unique_ptr<Burst[]> bursts_ = std::make_unique<Burst[]>(kSlots);
  IcmpRateLimiter icmp_limiter_;
  FragmentTable frag_table_;
  // Scratch for the fragments of one packet (too_big).
  std::unique_ptr<PacketBuf*[]> frags_ = std::make_unique<PacketBuf*[]>(kMaxFragments);
  std::unique_ptr<ParsedPacket[]> frag_parsed_ = std::make_unique<ParsedPacket[]>(kMaxFragments);
};

}  // namespace onramp::dp
