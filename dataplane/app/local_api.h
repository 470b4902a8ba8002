// The dataplane's local gRPC API (onramp.v1.DataplaneService) on a unix
// socket that only root can open: apply a table, read stats, trace a flow,
// health. The agent is its client.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

#include "common/status.h"
#include "dataplane/app/stats_report.h"

namespace grpc {
class Server;
}

namespace onramp::dp {

class LocalApi {
 public:
  // Starts serving on `socket_path` (its folder is created 0700, the socket
  // made 0600). A stale socket of an earlier run is replaced; a socket another
  // process serves, or a path that is not a socket, is refused and left as it
  // is. Returns the server, or why it could not start.
  static Result<std::unique_ptr<LocalApi>> start(const std::string& socket_path,
                                                 TablePublisher& publisher,
                                                 const StatsSources& sources);
  ~LocalApi();

 private:
  LocalApi() = default;
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string path_;
  std::pair<dev_t, ino_t> socket_id_{};  // the socket this API bound, to remove only it
};

}  // namespace onramp::dp
