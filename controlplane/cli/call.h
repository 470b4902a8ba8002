// The three shapes every admin command takes: call and print, get-patch-
// update (an update changes only the flags given), and delete.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>
#include <ostream>
#include <string>

#include "controlplane/cli/command.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/output.h"
#include "onramp/v1/admin.pb.h"

namespace onramp::cli {

// Calls AdminService/<method> and prints the answer; `table(out, response)`
// draws it for people.
template <typename Response, typename TableFn>
int call_and_print(Context& ctx, const std::string& method,
                   const google::protobuf::Message& request, TableFn table) {
  Response resp;
  grpc::Status s = ctx.admin(method, request, resp);
  if (!s.ok()) return ctx.fail(s);
  print_message(ctx.out, ctx.globals.format, resp, [&](std::ostream& out) { table(out, resp); });
  return kExitOk;
}

// Reads the resource with Get<Kind>(key), lets `patch` change what the flags
// say, writes it back with Update<Kind> and prints the result.
template <typename Resource, typename Key, typename TableFn>
int get_patch_update(Context& ctx, const std::string& kind, const Key& key,
                     const std::function<void(Resource&)>& patch, TableFn table) {
  Resource current;
  grpc::Status s = ctx.admin("Get" + kind, key, current);
  if (!s.ok()) return ctx.fail(s);
  patch(current);
  return call_and_print<Resource>(ctx, "Update" + kind, current, table);
}

// Delete<Kind>(key); says what went in table format, prints {} otherwise.
inline int delete_resource(Context& ctx, const std::string& kind,
                           const google::protobuf::Message& key, const std::string& what) {
  v1::DeleteResponse resp;
  grpc::Status s = ctx.admin("Delete" + kind, key, resp);
  if (!s.ok()) return ctx.fail(s);
  print_message(ctx.out, ctx.globals.format, resp,
                [&](std::ostream& out) { out << "deleted " << what << '\n'; });
  return kExitOk;
}

}  // namespace onramp::cli
