#include "controlplane/controller/config_store.h"

namespace onramp::ctl {

namespace {

// The addresses a resource puts in an index: an endpoint's address in
// endpoint_addresses, an accelerator's VIPs in vip_owners; nothing for the
// other kinds.
void unindex(Config& c, const v1::Endpoint& e) {
  c.endpoint_addresses.remove(e.address(), key_of(e));
}
void index(Config& c, const v1::Endpoint& e) { c.endpoint_addresses.add(e.address(), key_of(e)); }
void unindex(Config& c, const v1::Accelerator& a) {
  for (const std::string& vip : a.vips()) c.vip_owners.remove(vip, key_of(a));
}
void index(Config& c, const v1::Accelerator& a) {
  for (const std::string& vip : a.vips()) c.vip_owners.add(vip, key_of(a));
}
void unindex(Config&, const v1::Listener&) {}
void index(Config&, const v1::Listener&) {}
void unindex(Config&, const v1::EndpointGroup&) {}
void index(Config&, const v1::EndpointGroup&) {}

}  // namespace

void apply_change(Config& config, const ConfigChange& change) {
  // Kept as the maps change, at the cost of what changes; built once when
  // `config` came without them.
  if (!config.endpoints_indexed() || !config.vips_indexed()) config.reindex();
  auto drop = [&](const auto& x) {
    auto& table = config.map_of<std::decay_t<decltype(x)>>();
    auto it = table.find(key_of(x));
    if (it == table.end()) return;
    unindex(config, it->second);
    table.erase(key_of(x));
  };
  for (const Resource& r : change.erasures) std::visit(drop, r);
  for (const Resource& r : change.puts)
    std::visit(
        [&](const auto& x) {
          drop(x);
          auto& stored = config.map_of<std::decay_t<decltype(x)>>()[key_of(x)];
          stored = x;
          stored.set_resource_version(config.version);
          index(config, stored);
        },
        r);
  config.endpoint_addresses_generation = config.endpoints.generation();
  config.vip_owners_generation = config.accelerators.generation();
}

}  // namespace onramp::ctl
