#include "common/options.h"

#include <cctype>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>

#include "common/ip_address.h"
#include "common/log.h"
#include "common/text.h"
#include "common/version.h"

namespace onramp::opts {

const char* version() { return ONRAMP_VERSION; }

std::string version_line(std::string_view program) {
  return std::string(program) + " " + version();
}

void add_common_flags(CLI::App& app) { add_common_flags(app, std::cout); }

void add_common_flags(CLI::App& app, std::ostream& out) {
  std::string program = app.get_name();
  app.add_flag_callback(
      "--version",
      [program, &out] {
        out << version_line(program) << "\n";
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
  app.add_option_function<std::string>(
         "--log-format",
         [](const std::string& name) {
           if (Status s = log::set_format(name); !s.ok()) throw CLI::ValidationError(s.message());
         },
         std::string("Log lines: ") + log::kFormatNames + " (default logfmt)")
      ->type_name("FORMAT");
}

namespace {

bool key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// CLI11's TOML reader, remembering on which line each key stands so that an
// error about its value can say where to look.
class LineTrackingConfig : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::string text((std::istreambuf_iterator<char>(input)), std::istreambuf_iterator<char>());
    lines_.clear();
    std::istringstream scan(text);
    std::string line, section;
    for (int number = 1; std::getline(scan, line); ++number) {
      std::string t = CLI::detail::trim_copy(line);
      if (t.empty() || t[0] == '#') continue;
      if (t.front() == '[' && t.back() == ']') {
        section = CLI::detail::trim_copy(t.substr(1, t.size() - 2));
        continue;
      }
      auto eq = t.find('=');
      std::string key = CLI::detail::trim_copy(t.substr(0, eq));
      if (!section.empty() && section != "default") key = section + "." + key;
      lines_.emplace_back(key, number);
    }
    std::istringstream again(text);
    return CLI::ConfigTOML::from_config(again);
  }

  // The key (and its line) that `message` is about, if any: the longest key
  // named in it, as "--key" or as a word.
  std::optional<std::pair<std::string, int>> key_in(const std::string& message) const {
    std::optional<std::pair<std::string, int>> best;
    for (const auto& [key, line] : lines_) {
      bool named = message.find("--" + key) != std::string::npos;
      for (size_t at = message.find(key); at != std::string::npos && !named;
           at = message.find(key, at + 1)) {
        size_t end = at + key.size();
        named = (at == 0 || !key_char(message[at - 1])) &&
                (end >= message.size() || !key_char(message[end]));
      }
      if (named && (!best || key.size() > best->first.size())) best = {key, line};
    }
    return best;
  }

 private:
  mutable std::vector<std::pair<std::string, int>> lines_;
};

// The file --config names, or its default.
std::string config_path(const CLI::App& app) {
  const CLI::Option* opt = app.get_config_ptr();
  if (opt == nullptr) return "";
  if (opt->count() > 0) return opt->results().front();
  return opt->get_default_str();
}

}  // namespace

void add_config_file(CLI::App& app, const std::string& default_path) {
  app.config_formatter(std::make_shared<LineTrackingConfig>());
  // A mistyped key is an error, not silently nothing.
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.set_config("--config", default_path,
                 "Configuration file (TOML: the long flags without dashes, \"key = value\"); "
                 "flags override it");
  app.get_config_ptr()->type_name("FILE");
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    auto config = std::dynamic_pointer_cast<LineTrackingConfig>(app.get_config_formatter());
    if (config && e.get_exit_code() != 0) {
      if (auto where = config->key_in(e.what())) {
        // Only when the key did not also come from the command line.
        const CLI::Option* opt = app.get_option_no_throw("--" + where->first);
        bool on_command_line = false;
        for (int i = 1; opt != nullptr && i < argc; ++i)
          on_command_line |= std::string(argv[i]).rfind("--" + where->first, 0) == 0;
        if (!on_command_line) {
          std::cerr << config_path(app) << ":" << where->second << ": " << where->first << ": "
                    << e.what() << "\n";
          return 2;
        }
      }
    }
    // CLI11 answers with its own code per kind of error; every usage error
    // exits 2.
    return app.exit(e) == 0 ? 0 : 2;
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
const CLI::Validator kHostName(
    [](std::string& s) -> std::string {
      return is_host_name(s) ? ""
                             : quote(s) +
                                   " is not a host name: 1 to 63 of a-z, 0-9 and '-', not first "
                                   "or last, e.g. fra1-a";
    },
    "HOST");

bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

}  // namespace onramp::opts
