// libFuzzer target: the dataplane's table loader on arbitrary text (hardening
// review: a fuzz target over the table loader). Besides "no crash, no
// out-of-bounds access, no leak" (ASan, UBSan), it checks the loader's
// promises: a table it accepts passes validate_table_spec again and, where
// small enough to build here, builds; a refusal always says why.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/table_spec.h"
#include "dataplane/config/table_loader.h"
#include "dataplane/core/forwarding_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // tables are bounded by file size elsewhere
  std::string text(reinterpret_cast<const char*>(data), size);
  auto loaded = onramp::dp::parse_table_text(text);
  if (!loaded.ok()) {
    if (loaded.error().empty()) std::abort();  // every refusal names a reason
    return 0;
  }
  const onramp::TableSpec& spec = *loaded;
  if (!onramp::validate_table_spec(spec).ok()) std::abort();
  // Building allocates maglev_size slots per listener: only small tables.
  uint64_t slots = uint64_t{spec.maglev_size} * spec.listeners.size();
  if (slots <= (uint64_t{1} << 20)) {
    auto built = onramp::dp::ForwardingTable::build(spec, 1);
    // What the loader accepts, the dataplane builds.
    if (!built.ok()) std::abort();
  }
  return 0;
}
