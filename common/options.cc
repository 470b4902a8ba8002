#include "common/options.h"

#include <iostream>
#include <regex>

#include "common/ip_address.h"
#include "common/log.h"
#include "common/text.h"
#include "common/version.h"

namespace onramp::opts {

const char* version() { return ONRAMP_VERSION; }

std::string version_line(std::string_view program) {
  return std::string(program) + " " + version();
}

void add_common_flags(CLI::App& app) {
  std::string program = app.get_name();
  app.add_flag_callback(
      "--version",
      [program] {
        std::cout << version_line(program) << "\n";
        throw CLI::Success();
      },
      "Print the version and exit");
  app.add_option_function<std::string>(
         "--log-level",
         [](const std::string& name) {
           if (Status s = log::set_level(name); !s.ok()) throw CLI::ValidationError(s.message());
         },
         std::string("Log level: ") + log::kLevelNames + " (default info)")
      ->type_name("LEVEL");
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

namespace {

CLI::Validator address_check(const char* name, const char* what, int family) {
  return CLI::Validator(
      [what, family](std::string& s) -> std::string {
        auto a = IpAddress::parse(s);
        bool ok = a && (family == 0 || (family == 4) == a->is_v4());
        return ok ? "" : quote(s) + " is not " + what;
      },
      name);
}

}  // namespace

const CLI::Validator kIpAddress = address_check("IP", "an IPv4 or IPv6 address", 0);
const CLI::Validator kIpv4 = address_check("IPV4", "an IPv4 address", 4);
const CLI::Validator kIpv6 = address_check("IPV6", "an IPv6 address", 6);
const CLI::Validator kMac(
    [](std::string& s) -> std::string {
      return parse_mac(s) ? "" : quote(s) + " is not a MAC address aa:bb:cc:dd:ee:ff";
    },
    "MAC");
const CLI::Validator kPopId(
    [](std::string& s) -> std::string {
      static const std::regex re("[A-Z]{3}[0-9]{1,2}");
      return std::regex_match(s, re) ? "" : quote(s) + " is not IATA code + number, e.g. FRA1";
    },
    "POP");

}  // namespace onramp::opts
