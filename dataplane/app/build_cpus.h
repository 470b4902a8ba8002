// Where the dataplane builds its forwarding tables: on the CPUs the process
// may run on that no polling lcore holds. At start, before any lcore polls,
// that is every CPU it was given, so a restarted dataplane fills its Maglev
// tables on all of them; a table swap uses those the workers leave free.
#pragma once

#include <sched.h>

#include <span>

#include "common/status.h"

namespace onramp::dp {

class BuildCpus {
 public:
  // The CPUs the calling thread may run on now. Taken before rte_eal_init,
  // which pins the main thread to the main lcore's CPU.
  static BuildCpus of_calling_thread();
  // These CPUs without those of the given lcores (after rte_eal_init).
  BuildCpus without_lcores(std::span<const unsigned> lcores) const;

  unsigned count() const { return static_cast<unsigned>(CPU_COUNT(&set_)); }
  // Threads for one build: `requested` when not 0, else one per CPU here;
  // at least one (the caller).
  unsigned threads(unsigned requested) const {
    unsigned n = requested != 0 ? requested : count();
    return n == 0 ? 1 : n;
  }

  // Runs build() with the calling thread, and so the threads it starts,
  // allowed on these CPUs, then gives the caller its own CPUs back. With no
  // CPU here it runs build() where the caller is.
  template <typename Build>
  auto run(const Build& build) const {
    cpu_set_t own;
    const bool moved = count() > 0 && enter(own);
    auto result = build();
    if (moved) leave(own);
    return result;
  }

 private:
  bool enter(cpu_set_t& own) const;
  static void leave(const cpu_set_t& own);

  cpu_set_t set_{};
};

}  // namespace onramp::dp
