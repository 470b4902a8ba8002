#include "dataplane/app/build_cpus.h"

#include <pthread.h>
#include <rte_lcore.h>

namespace onramp::dp {

BuildCpus BuildCpus::of_calling_thread() {
  BuildCpus cpus;
  if (pthread_getaffinity_np(pthread_self(), sizeof cpus.set_, &cpus.set_) != 0)
    CPU_ZERO(&cpus.set_);
  return cpus;
}

BuildCpus BuildCpus::without_lcores(std::span<const unsigned> lcores) const {
  BuildCpus left = *this;
  for (unsigned lcore : lcores) {
    rte_cpuset_t held = rte_lcore_cpuset(lcore);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &held)) CPU_CLR(cpu, &left.set_);
  }
  return left;
}

bool BuildCpus::enter(cpu_set_t& own) const {
  if (pthread_getaffinity_np(pthread_self(), sizeof own, &own) != 0) return false;
  return pthread_setaffinity_np(pthread_self(), sizeof set_, &set_) == 0;
}

void BuildCpus::leave(const cpu_set_t& own) {
  // Best effort: failing to move back leaves a control thread on more CPUs,
  // never a polling one.
  (void)pthread_setaffinity_np(pthread_self(), sizeof own, &own);
}

}  // namespace onramp::dp
