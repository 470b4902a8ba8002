#include "dataplane/core/table_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace onramp::dp {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeFrom = size_t{1} << 20;

}  // namespace

HugePageResource::~HugePageResource() = default;

void* HugePageResource::do_allocate(size_t bytes, size_t alignment) {
  if (bytes < kHugeFrom) return ::operator new(bytes, std::align_val_t(alignment));
  const size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (!p) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);
  return p;
}

void HugePageResource::do_deallocate(void* p, size_t bytes, size_t alignment) {
  if (bytes < kHugeFrom) {
    ::operator delete(p, std::align_val_t(alignment));
    return;
  }
  std::free(p);
}

}  // namespace onramp::dp
