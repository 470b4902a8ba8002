#include "dataplane/core/table_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace onramp::dp {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeFrom = size_t{1} << 20;

}  // namespace

void* alloc_table_memory(size_t bytes, size_t alignment) {
  const bool huge = bytes >= kHugeFrom;
  const size_t align = huge ? kHugePage : std::max(alignment, sizeof(void*));
  const size_t rounded = (bytes + align - 1) & ~(align - 1);
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw std::bad_alloc();
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

HugePageResource::~HugePageResource() = default;

void* HugePageResource::do_allocate(size_t bytes, size_t alignment) {
  return alloc_table_memory(bytes, alignment);
}

void HugePageResource::do_deallocate(void* p, size_t, size_t) { std::free(p); }

}  // namespace onramp::dp
