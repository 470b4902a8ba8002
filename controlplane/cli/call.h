// The three shapes every admin command takes: call and print, get-patch-
// update (an update changes only the flags given), and delete; each through
// the generated AdminService stub.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>
#include <ostream>
#include <string>
#include <type_traits>

#include "controlplane/cli/command.h"
#include "controlplane/cli/exit_code.h"
#include "controlplane/cli/output.h"
#include "onramp/v1/admin.pb.h"

namespace onramp::cli {

// Prints `message` in the -o format (print_message); a JSONPath that asks
// for a field the answer does not have is a usage error.
inline int print_response(Context& ctx, const google::protobuf::Message& message,
                          const std::function<void(std::ostream&)>& table) {
  Status s = print_message(ctx.out, ctx.globals, message, table);
  return s.ok() ? static_cast<int>(kExitOk) : ctx.fail(kExitUsage, s.message());
}

// Calls `method` and prints the answer; `table(out, response)` draws it for
// people, or `table(out, response, wide)` where the command has more columns
// to show with -o wide.
template <typename Response, typename Request, typename TableFn>
int call_and_print(Context& ctx, Context::AdminMethod<Request, Response> method,
                   const Request& request, TableFn table) {
  Response resp;
  grpc::Status s = ctx.admin(method, request, resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) {
    if constexpr (std::is_invocable_v<TableFn, std::ostream&, const Response&, bool>)
      table(out, resp, ctx.globals.format == Format::kWide);
    else
      table(out, resp);
  });
}

// Reads the resource with `get(key)`, lets `patch` change what the flags say,
// writes it back with `update` and prints the result.
template <typename Resource, typename Key, typename TableFn>
int get_patch_update(Context& ctx, Context::AdminMethod<Key, Resource> get,
                     Context::AdminMethod<Resource, Resource> update, const Key& key,
                     const std::function<void(Resource&)>& patch, TableFn table) {
  Resource current;
  grpc::Status s = ctx.admin(get, key, current);
  if (!s.ok()) return ctx.fail(s);
  patch(current);
  return call_and_print<Resource>(ctx, update, current, table);
}

// `remove(key)`; says what went in table format, prints {} otherwise.
template <typename Key>
int delete_resource(Context& ctx, Context::AdminMethod<Key, v1::DeleteResponse> remove,
                    const Key& key, const std::string& what) {
  v1::DeleteResponse resp;
  grpc::Status s = ctx.admin(remove, key, resp);
  if (!s.ok()) return ctx.fail(s);
  return print_response(ctx, resp, [&](std::ostream& out) { out << "deleted " << what << '\n'; });
}

}  // namespace onramp::cli
