// The three shapes every admin command takes: call and print, update of the
// fields given (an update mask), and delete; each through the generated
// AdminService stub.
#pragma once

#include <grpcpp/support/status.h>

#include <functional>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

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

// An update that sends only what the flags gave: `request` holds the
// resource's key and the new values, `paths` the fields they are (the update
// mask). The controller applies them to the resource as stored, in one
// transaction, so a concurrent change of other fields is kept. No path is a
// usage error: an empty mask would replace the whole resource.
template <typename Resource, typename Request, typename TableFn>
int update_fields(Context& ctx, Context::AdminMethod<Request, Resource> update, Request request,
                  const std::vector<std::string>& paths, TableFn table) {
  if (paths.empty()) return ctx.fail(kExitUsage, "nothing to change: give at least one setting");
  for (const std::string& p : paths) request.mutable_update_mask()->add_paths(p);
  return call_and_print<Resource>(ctx, update, request, table);
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
