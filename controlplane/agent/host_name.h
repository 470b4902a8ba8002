// Which server of its PoP an agent runs on (Hello.host): `--host`, or by
// default the machine's host name cut to its first label, so that the
// servers fra1-a.example.net and fra1-b.example.net of FRA1 are told apart
// without a flag.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace onramp::agent {

// The first label of `hostname`, in lower case, when that is a host name
// (opts::is_host_name); an error saying to pass --host otherwise.
Result<std::string> host_name_from(std::string_view hostname);

// host_name_from() of the machine's host name (gethostname).
Result<std::string> default_host_name();

}  // namespace onramp::agent
