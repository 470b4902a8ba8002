#include "controlplane/agent/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace onramp::agent {
namespace {

std::mutex& log_mutex() {
  static std::mutex mu;
  return mu;
}

std::string& log_pop() {
  static std::string pop;
  return pop;
}

}  // namespace

void set_log_pop(const std::string& pop) {
  std::lock_guard<std::mutex> lock(log_mutex());
  log_pop() = pop;
}

void log(LogLevel level, const std::string& message) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  const char* name = level == LogLevel::kInfo      ? "info"
                     : level == LogLevel::kWarning ? "warning"
                                                   : "error";
  std::lock_guard<std::mutex> lock(log_mutex());
  std::string who = log_pop().empty() ? "onramp-agent" : "onramp-agent " + log_pop();
  std::fprintf(stderr, "%s.%03dZ %s %s: %s\n", stamp, static_cast<int>(ms.count()), who.c_str(),
               name, message.c_str());
}

}  // namespace onramp::agent
