// Telling systemd how a daemon is doing (Type=notify units): READY=1 once it
// serves, STATUS= lines an operator sees in `systemctl status`, STOPPING=1 on
// the way out, and WATCHDOG=1 from its main loop so a hung process is
// restarted. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
#pragma once

#include <chrono>
#include <string_view>

namespace onramp::service {

// The daemon now does its job (dataplane: ports started and a table loaded;
// agent: a session open or the last good table re-applied; controller: store
// open and listeners bound). `status` is shown by systemctl.
void ready(std::string_view status);
void status(std::string_view status);
void stopping();

// How often systemd expects watchdog(): WatchdogSec, or zero when the unit
// has none.
std::chrono::microseconds watchdog_interval();
// Call from the main loop as often as it turns: sends WATCHDOG=1 at most
// every half interval, so a busy loop costs one clock read a call.
void watchdog();

}  // namespace onramp::service
