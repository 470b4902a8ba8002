#include "dataplane/core/trace.h"

#include <sstream>

#include "dataplane/core/encap.h"
#include "dataplane/core/pmtu.h"

namespace onramp::dp {

FlowTrace trace_flow(const ForwardingTable& table, const FlowQuery& q) {
  FlowTrace t;
  const char* proto = q.l4_proto == 6 ? "TCP" : q.l4_proto == 17 ? "UDP" : "other";
  const Vip* vip = table.find_vip(q.vip);
  if (!vip) {
    t.steps.push_back(q.vip.to_string() + " is not a VIP of table version " +
                      std::to_string(table.spec().version) + ": dropped (non_vip)");
    return t;
  }
  t.listener = ForwardingTable::find_listener(*vip, q.l4_proto, q.port);
  if (t.listener < 0) {
    t.steps.push_back(std::string("no listener on ") + q.vip.to_string() + " for " + proto +
                      " port " + std::to_string(q.port) + ": dropped (no_listener)");
    return t;
  }
  const Listener& l = table.listener(t.listener);
  t.steps.push_back(std::string("listener ") + l.name + " matches " + proto + " " +
                    q.vip.to_string() + ":" + std::to_string(q.port));
  FlowKey key = flow_key(q.client, q.client_port, q.vip, q.port, q.l4_proto, l);
  t.hash = FlowTable::hash_key(key);
  std::ostringstream hs;
  hs << (l.affinity == Affinity::source_ip ? "source-IP affinity: hash of client "
                                           : "5-tuple hash ")
     << "= 0x" << std::hex << t.hash << std::dec << ", Maglev slot " << t.hash % l.maglev.size()
     << " of " << l.maglev.size();
  t.steps.push_back(hs.str());
  t.endpoint = l.pick(t.hash);
  if (t.endpoint < 0) {
    t.steps.push_back(
        "no endpoint takes new flows (all weight 0 or unhealthy): dropped "
        "(no_endpoint)");
    return t;
  }
  const Endpoint& e = l.endpoints[t.endpoint];
  int takers = 0;
  uint32_t total = 0;
  for (const Endpoint& x : l.endpoints)
    if (x.healthy && x.weight > 0) {
      ++takers;
      total += x.weight;
    }
  std::ostringstream es;
  es << "endpoint " << e.address.to_string();
  if (!e.label.empty()) es << " (" << e.label << ")";
  es << ", weight " << int{e.weight} << " of " << total << " over " << takers
     << " endpoints taking new flows, " << (e.mode == ForwardingMode::gue ? "GUE" : "IPIP");
  t.steps.push_back(es.str());
  if (e.relayed) {
    std::ostringstream rs;
    rs << "relayed over the backbone via PoP " << e.relay->to_string()
       << ": the packet for the endpoint goes in GUE to UDP port " << e.relay_port
       << ", and the relay sends it on from its own tunnel address; " << encap_overhead(e)
       << " bytes of headers in all, so packets up to "
       << inner_mtu(table.spec().mtu, encap_overhead(e)) << " bytes fit";
    t.steps.push_back(rs.str());
  }
  return t;
}

}  // namespace onramp::dp
