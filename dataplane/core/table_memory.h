// Memory for a compiled forwarding table's arrays (Maglev slots, endpoints,
// listeners, counters): one arena a table, in huge pages where the kernel
// allows. A mixed workload reads these at random, a packet at a time; on
// 4 KiB pages each of those reads would also miss the TLB (at 1000
// listeners the Maglev tables alone are 128 MiB). Freed with the table.
#pragma once

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <vector>

namespace onramp::dp {

// `bytes` for a table read at random: from 1 MiB on, 2 MiB-aligned and
// marked for transparent huge pages (on 4 KiB pages nearly every read
// would also miss the TLB); below that, aligned to `alignment` (a power of
// two). Freed with std::free. Throws std::bad_alloc.
void* alloc_table_memory(size_t bytes, size_t alignment = 64);

// Hands out 2 MiB-aligned blocks marked for transparent huge pages when
// asked for 1 MiB or more, ordinary memory below that; frees them all when
// destroyed. The upstream of a table's monotonic arena (TableArena).
class HugePageResource final : public std::pmr::memory_resource {
 public:
  HugePageResource() = default;
  HugePageResource(const HugePageResource&) = delete;
  HugePageResource& operator=(const HugePageResource&) = delete;
  ~HugePageResource() override;

 private:
  void* do_allocate(size_t bytes, size_t alignment) override;
  void do_deallocate(void* p, size_t bytes, size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

// A table's arena: bump allocation from blocks of the resource above, the
// first one sized by the caller's estimate of what the table needs.
class TableArena {
 public:
  explicit TableArena(size_t estimate) : arena_(estimate, &upstream_) {}
  std::pmr::memory_resource* resource() { return &arena_; }

 private:
  HugePageResource upstream_;
  std::pmr::monotonic_buffer_resource arena_;
};

}  // namespace onramp::dp
