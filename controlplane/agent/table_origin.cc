#include "controlplane/agent/table_origin.h"

#include "common/text.h"

namespace onramp::agent {
namespace {

constexpr const char* kHowToConfirm =
    "; the PoP keeps its table until an operator runs `onrampctl pop adopt`";

std::string describe(const TableOrigin& o) {
  return "store " + printable(o.store_id, 64) + " epoch " + std::to_string(o.epoch) + " version " +
         std::to_string(o.version);
}

}  // namespace

Status may_apply(const std::optional<TableOrigin>& running, const TableOrigin& offered,
                 bool adopt) {
  // The first table, a table kept from before stores had identities, and
  // the operator's confirmation: nothing to compare against, or no need.
  if (adopt || !running || running->store_id.empty()) return ok_status();
  const std::string runs = "it runs " + describe(*running);
  if (offered.store_id.empty())
    return error("table without a store identity (an older controller?) refused: " + runs +
                 kHowToConfirm);
  if (offered.store_id != running->store_id)
    return error("table from another store refused (" + describe(offered) + "): " + runs +
                 kHowToConfirm);
  if (offered.epoch < running->epoch)
    return error("table from an older epoch of the store refused (" + describe(offered) +
                 "): " + runs + kHowToConfirm);
  // A new epoch is the operator's word that lower versions are right (a
  // restored backup).
  if (offered.epoch > running->epoch) return ok_status();
  if (offered.version < running->version)
    return error("table older than the one the PoP runs refused (" + describe(offered) +
                 "): " + runs + kHowToConfirm);
  return ok_status();
}

}  // namespace onramp::agent
