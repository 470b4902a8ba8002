#include "controlplane/controller/table_check.h"

#include "dataplane/config/table_loader.h"

namespace onramp::ctl {

Result<TableSpec> check_table(const onramp::v1::ForwardingTable& table) {
  onramp::v1::ForwardingTable copy = table;
  if (copy.next_hop_mac().empty()) copy.set_next_hop_mac(kPlaceholderNextHopMac);
  return dp::table_spec_from_proto(copy);
}

}  // namespace onramp::ctl
