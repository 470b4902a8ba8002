// Builders for the controller's tests: resources with the fields a test
// cares about, and a scratch folder removed at the end.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "onramp/v1/resources.pb.h"

namespace onramp::ctl::test {

namespace v1 = onramp::v1;

inline v1::Accelerator accelerator(const std::string& name, std::vector<std::string> vips,
                                   bool enabled = true) {
  v1::Accelerator a;
  a.set_name(name);
  a.set_enabled(enabled);
  for (auto& v : vips) a.add_vips(v);
  return a;
}

inline v1::Listener listener(const std::string& acc, const std::string& name,
                             std::vector<std::pair<uint32_t, uint32_t>> ranges,
                             v1::Protocol protocol = v1::TCP) {
  v1::Listener l;
  l.set_accelerator(acc);
  l.set_name(name);
  l.set_protocol(protocol);
  for (auto [first, last] : ranges) {
    auto* r = l.add_port_ranges();
    r->set_first(first);
    r->set_last(last);
  }
  return l;
}

inline v1::EndpointGroup group(const std::string& acc, const std::string& lis,
                               const std::string& name, const std::string& region = "",
                               int dial = -1) {
  v1::EndpointGroup g;
  g.set_accelerator(acc);
  g.set_listener(lis);
  g.set_name(name);
  g.set_region(region);
  if (dial >= 0) g.set_traffic_dial_percent(static_cast<uint32_t>(dial));
  return g;
}

inline v1::Endpoint endpoint(const std::string& acc, const std::string& lis, const std::string& grp,
                             const std::string& address, int weight = -1) {
  v1::Endpoint e;
  e.set_accelerator(acc);
  e.set_listener(lis);
  e.set_endpoint_group(grp);
  e.set_address(address);
  if (weight >= 0) e.set_weight(static_cast<uint32_t>(weight));
  return e;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "onramp-ctl-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace onramp::ctl::test
