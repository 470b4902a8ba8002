#include "controlplane/controller/config_store.h"

namespace onramp::ctl {

namespace {

template <typename T>
ResourceMap<T>& table_of(Config& c);
template <>
ResourceMap<v1::Accelerator>& table_of(Config& c) {
  return c.accelerators;
}
template <>
ResourceMap<v1::Listener>& table_of(Config& c) {
  return c.listeners;
}
template <>
ResourceMap<v1::EndpointGroup>& table_of(Config& c) {
  return c.groups;
}
template <>
ResourceMap<v1::Endpoint>& table_of(Config& c) {
  return c.endpoints;
}

}  // namespace

void apply_change(Config& config, const ConfigChange& change) {
  for (const Resource& r : change.erasures)
    std::visit([&](const auto& x) { table_of<std::decay_t<decltype(x)>>(config).erase(key_of(x)); },
               r);
  for (const Resource& r : change.puts)
    std::visit(
        [&](const auto& x) {
          auto& stored = table_of<std::decay_t<decltype(x)>>(config)[key_of(x)];
          stored = x;
          stored.set_resource_version(config.version);
        },
        r);
}

}  // namespace onramp::ctl
