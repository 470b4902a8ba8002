#include "controlplane/agent/host_name.h"

#include <unistd.h>

#include <cctype>

#include "common/options.h"
#include "common/text.h"

namespace onramp::agent {

Result<std::string> host_name_from(std::string_view hostname) {
  std::string label(hostname.substr(0, hostname.find('.')));
  for (char& c : label) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!opts::is_host_name(label))
    return error("the host name " + quote(hostname) +
                 " does not start with a DNS label (a-z, 0-9, '-'); name this server with "
                 "--host, e.g. --host fra1-a");
  return label;
}

Result<std::string> default_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0)
    return error("cannot read the machine's host name; name this server with --host");
  return host_name_from(buf);
}

}  // namespace onramp::agent
