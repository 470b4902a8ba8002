// `onrampctl health`: every endpoint's state as every connected PoP sees it.
// Health is per PoP: an endpoint one PoP cannot reach is unhealthy from that
// PoP only, so the table has one line per (PoP, endpoint).
#include <CLI/CLI.hpp>

#include "controlplane/cli/call.h"
#include "controlplane/cli/resource_tables.h"
#include "controlplane/common/state_names.h"

namespace onramp::cli {
namespace {

struct HealthFlags {
  std::string pop;
  std::string accelerator;
  std::string listener;
};

}  // namespace

void print_health(std::ostream& out, const v1::GetHealthResponse& r, bool wide) {
  if (r.endpoints().empty()) {
    out << "no endpoint health: no PoP is connected, or no endpoint matches\n";
    return;
  }
  Table t({"POP", "LISTENER", "GROUP (REGION)", "ENDPOINT", "STATE", "RTT", "SINCE", "LAST ERROR"},
          {"TLS HANDSHAKE"}, wide);
  for (const v1::EndpointHealth& e : r.endpoints()) {
    std::string state(cp::health_state_name(e.state()));
    if (e.state() != v1::HEALTH_STATE_UNKNOWN && e.consecutive() > 0)
      state += " x" + std::to_string(e.consecutive());
    t.row({e.pop(), e.accelerator() + "/" + e.listener(),
           e.region().empty() || e.region() == e.endpoint_group()
               ? e.endpoint_group()
               : e.endpoint_group() + " (" + e.region() + ")",
           e.address(), state, e.rtt_ms() < 0 ? "-" : format_number(e.rtt_ms()) + " ms",
           format_time_ms(e.last_change_ms()), e.last_error()},
          {e.tls_handshake_ms() < 0 ? "-" : format_number(e.tls_handshake_ms()) + " ms"});
  }
  t.print(out);
}

void add_health_commands(CommandTree& tree) {
  auto f = std::make_shared<HealthFlags>();
  CLI::App* health = tree.command(
      tree.root, "health", "Every endpoint's health and RTT as seen from every connected PoP",
      "  onrampctl health\n  onrampctl health --pop FRA1 --accelerator web\n"
      "  onrampctl health --listener https -o json\n",
      [f](Context& ctx) {
        v1::GetHealthRequest req;
        req.set_pop(f->pop);
        req.set_accelerator(f->accelerator);
        req.set_listener(f->listener);
        return call_and_print<v1::GetHealthResponse>(ctx, &AdminStub::GetHealth, req, print_health);
      });
  health->add_option("--pop", f->pop, "Only this PoP, e.g. FRA1");
  health->add_option("--accelerator", f->accelerator, "Only this accelerator");
  health->add_option("--listener", f->listener, "Only listeners of this name");
}

}  // namespace onramp::cli
