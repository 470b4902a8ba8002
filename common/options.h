// Command lines of every onramp binary: CLI11, with the flags all of them
// share (--version, --log-level, --log-format) and the checks their addresses need, so a
// flag is parsed, checked and explained the same way everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace onramp::opts {

// "0.1.0", and in a git checkout what `git describe` says: "0.1.0 (git 1a2b3c4)".
const char* version();
// "onramp-agent 0.1.0 (...)": what --version prints.
std::string version_line(std::string_view program);

// Adds --version, --log-level and --log-format (the common logger's level
// and line format) to `app`.
void add_common_flags(CLI::App& app);
// The same, with --version printing to `out` (which outlives parsing).
void add_common_flags(CLI::App& app, std::ostream& out);

// Adds --config FILE: a configuration file read before the command line,
// whose keys are the long flags without their dashes ("port = 7444"; TOML:
// strings may be quoted, lists in [..], # comments). Flags given on the
// command line override it. `default_path` (e.g. /etc/onramp/agent.conf) is
// read when it exists; a file named with --config must exist.
void add_config_file(CLI::App& app, const std::string& default_path);

// Parses argv. nullopt: go on; otherwise main returns the value: 0 after
// --help or --version, 2 (with CLI11's message naming the flag) for a usage
// error. An error about a value from the configuration file names the file,
// the line and the key ("/etc/onramp/agent.conf:3: pop: ...").
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// Checks for CLI11 options, each with a message that says what is expected.
extern const CLI::Validator kIpAddress;  // IPv4 or IPv6
extern const CLI::Validator kIpv4;
extern const CLI::Validator kIpv6;
extern const CLI::Validator kMac;
extern const CLI::Validator kPopId;  // IATA code + number, e.g. FRA1
// A host of a PoP: one DNS label in lower case, e.g. fra1-a.
extern const CLI::Validator kHostName;

// Whether `name` is one DNS label in lower case: 1..63 of [a-z0-9-], neither
// first nor last '-'.
bool is_host_name(std::string_view name);

}  // namespace onramp::opts
