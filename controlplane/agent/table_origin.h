// Where a table comes from, and whether the agent may apply it: a table from
// another store, a lower epoch, or a lower version of the same store and
// epoch would take the PoP backwards (a controller started on an empty or
// restored store), so it is refused until an operator confirms it
// (`onrampctl pop adopt`, docs/controller.md "Store identity").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace onramp::agent {

struct TableOrigin {
  std::string store_id;  // "" from a controller without store identity
  uint64_t epoch = 0;
  uint64_t version = 0;
};

// OK when a PoP that runs a table of `running` (none: nullopt) may apply one
// of `offered`; otherwise the reason, which the NACK carries. `adopt` is the
// operator's confirmation: anything goes.
Status may_apply(const std::optional<TableOrigin>& running, const TableOrigin& offered, bool adopt);

}  // namespace onramp::agent
