#include "controlplane/controller/options.h"

#include <getopt.h>

#include <cerrno>
#include <cstdlib>

namespace onramp::ctl {

const char* options_usage() {
  return R"(usage: onramp-controller [options]

Stores onramp's configuration, serves the admin API to onrampctl, and pushes
a forwarding table to every PoP's agent.

  --db PATH               SQLite database (default /var/lib/onramp/controller.db)
  --admin-listen ADDR     admin API address (default 127.0.0.1:7443)
  --pop-listen ADDR       PoP API address for agents (default 0.0.0.0:7444)
  --tls-cert FILE         server certificate chain, PEM
  --tls-key FILE          its private key, PEM
  --tls-client-ca FILE    CA of client certificates, PEM: PoP certificates
                          (CN = PoP id, e.g. FRA1) and operator certificates
  --admin-token-file FILE bearer tokens accepted on the admin API, one a line
  --plaintext             no TLS; refused unless every address is loopback
  --debounce-ms N         push a mutation at once after N ms without a push;
                          hold later ones until N ms pass without another
                          and push them together, 0..60000 (default 100)
  --help                  this text

Admin callers present a client certificate signed by --tls-client-ca or
"authorization: Bearer <token>". Agents must present a client certificate
whose common name is their PoP id. Development certificates: scripts/dev-ca.

Example (a laptop, no TLS):
  onramp-controller --db /tmp/onramp.db --plaintext \
    --admin-listen 127.0.0.1:7443 --pop-listen 127.0.0.1:7444
)";
}

std::string parse_options(int argc, char** argv, Options& out, bool& help) {
  enum {
    kDb = 256,
    kAdminListen,
    kPopListen,
    kCert,
    kKey,
    kClientCa,
    kTokenFile,
    kPlaintext,
    kDebounce,
    kHelp,
  };
  static const option longopts[] = {
      {"db", required_argument, nullptr, kDb},
      {"admin-listen", required_argument, nullptr, kAdminListen},
      {"pop-listen", required_argument, nullptr, kPopListen},
      {"tls-cert", required_argument, nullptr, kCert},
      {"tls-key", required_argument, nullptr, kKey},
      {"tls-client-ca", required_argument, nullptr, kClientCa},
      {"admin-token-file", required_argument, nullptr, kTokenFile},
      {"plaintext", no_argument, nullptr, kPlaintext},
      {"debounce-ms", required_argument, nullptr, kDebounce},
      {"help", no_argument, nullptr, kHelp},
      {nullptr, 0, nullptr, 0},
  };
  help = false;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    switch (c) {
      case kDb:
        out.db = optarg;
        break;
      case kAdminListen:
        out.server.admin_listen = optarg;
        break;
      case kPopListen:
        out.server.pop_listen = optarg;
        break;
      case kCert:
        out.server.tls.cert = optarg;
        break;
      case kKey:
        out.server.tls.key = optarg;
        break;
      case kClientCa:
        out.server.tls.client_ca = optarg;
        break;
      case kTokenFile:
        out.admin_token_file = optarg;
        break;
      case kPlaintext:
        out.server.plaintext = true;
        break;
      case kDebounce: {
        errno = 0;
        char* end = nullptr;
        unsigned long long v = std::strtoull(optarg, &end, 10);
        if (errno || !end || *end || end == optarg || v > 60000)
          return std::string("--debounce-ms: \"") + optarg + "\" is not a number in 0..60000";
        out.server.debounce = std::chrono::milliseconds(v);
        break;
      }
      case kHelp:
        help = true;
        return "";
      default:
        return std::string("unknown or incomplete option ") +
               (optind > 0 && optind <= argc ? argv[optind - 1] : "") + " (see --help)";
    }
  }
  if (optind < argc) return std::string("unexpected argument \"") + argv[optind] + "\"";
  if (out.db.empty()) return "--db: required";
  if (out.server.admin_listen.empty()) return "--admin-listen: required";
  if (out.server.pop_listen.empty()) return "--pop-listen: required";
  return "";
}

}  // namespace onramp::ctl
