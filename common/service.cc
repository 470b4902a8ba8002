#include "common/service.h"

#include <systemd/sd-daemon.h>

#include <atomic>
#include <string>

namespace onramp::service {
namespace {

void notify(const std::string& text) {
  // 0: not under systemd; < 0: the socket is gone. Neither stops a daemon.
  (void)sd_notify(0, text.c_str());
}

}  // namespace

void ready(std::string_view s) { notify("READY=1\nSTATUS=" + std::string(s)); }

void status(std::string_view s) { notify("STATUS=" + std::string(s)); }

void stopping() { notify("STOPPING=1"); }

std::chrono::microseconds watchdog_interval() {
  // Read each time (an environment lookup): cheap beside a main loop's turn,
  // and right even if the environment changes.
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec);
}

void watchdog() {
  const auto interval = watchdog_interval();
  if (interval.count() == 0) return;
  // Relaxed is enough: two threads that both send WATCHDOG=1 do no harm, and
  // the value orders nothing else.
  static std::atomic<int64_t> last_sent_us{0};
  int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = last_sent_us.load(std::memory_order_relaxed);
  if (last != 0 && now - last < interval.count() / 2) return;
  last_sent_us.store(now, std::memory_order_relaxed);
  notify("WATCHDOG=1");
}

}  // namespace onramp::service
