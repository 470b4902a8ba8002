// `onrampctl apply`, `diff` and `export`: the configuration kept as files
// (docs/cli.md "Configuration as code"). A plan compares the file with what
// the controller has now: create what is missing, update the fields that
// differ (conditional on the resource_version read, so a change made
// meanwhile is a conflict, not overwritten), and with --prune delete what
// the file's accelerators no longer hold. apply carries the plan out, diff
// prints it, export writes the file the controller's configuration is.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <set>

#include "common/files.h"
#include "controlplane/cli/call.h"
#include "controlplane/cli/config_file.h"

namespace onramp::cli {
namespace {

// Parents before children, siblings by name: "web" < "web/http" <
// "web/http/eu" < "web/http/eu/192.0.2.1" < "web/http/us".
std::vector<std::string> path_of(const AnyResource& r) {
  return std::visit(
      [](const auto& x) -> std::vector<std::string> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, v1::Accelerator>)
          return {x.name()};
        else if constexpr (std::is_same_v<T, v1::Listener>)
          return {x.accelerator(), x.name()};
        else if constexpr (std::is_same_v<T, v1::EndpointGroup>)
          return {x.accelerator(), x.listener(), x.name()};
        else
          return {x.accelerator(), x.listener(), x.endpoint_group(), x.address()};
      },
      r);
}

bool parent_first(const AnyResource& a, const AnyResource& b) { return path_of(a) < path_of(b); }

uint64_t version_of(const AnyResource& r) {
  return std::visit([](const auto& x) { return x.resource_version(); }, r);
}

// Everything the controller has (or one accelerator of it), parents first.
grpc::Status read_current(Context& ctx, const std::string& accelerator,
                          std::vector<AnyResource>& out) {
  v1::ListRequest req;
  req.set_accelerator(accelerator);
  v1::ListAcceleratorsResponse accs;
  v1::ListListenersResponse listeners;
  v1::ListEndpointGroupsResponse groups;
  v1::ListEndpointsResponse endpoints;
  for (grpc::Status s : {ctx.admin(&AdminStub::ListAccelerators, req, accs),
                         ctx.admin(&AdminStub::ListListeners, req, listeners),
                         ctx.admin(&AdminStub::ListEndpointGroups, req, groups),
                         ctx.admin(&AdminStub::ListEndpoints, req, endpoints)})
    if (!s.ok()) return s;
  for (const auto& a : accs.accelerators()) out.emplace_back(a);
  for (const auto& l : listeners.listeners()) out.emplace_back(l);
  for (const auto& g : groups.endpoint_groups()) out.emplace_back(g);
  for (const auto& e : endpoints.endpoints()) out.emplace_back(e);
  std::stable_sort(out.begin(), out.end(), parent_first);
  return grpc::Status::OK;
}

struct Step {
  enum class Op { create, update, remove };
  Op op;
  // create, update: as the file has it; remove: as the controller has it.
  AnyResource resource;
  // update: the fields that differ, what the controller has, and the
  // resource_version the update is conditional on.
  std::vector<std::string> paths;
  AnyResource current;
  uint64_t version = 0;
};

std::vector<Step> plan(std::vector<FileResource> file, const std::vector<AnyResource>& current,
                       bool prune) {
  std::map<std::string, const AnyResource*> now;
  for (const AnyResource& r : current) now[label(r)] = &r;
  std::stable_sort(file.begin(), file.end(), [](const FileResource& a, const FileResource& b) {
    return parent_first(a.resource, b.resource);
  });
  std::vector<Step> steps;
  std::set<std::string> named;
  std::set<std::string> scope;  // the accelerators the file names, for --prune
  for (const FileResource& f : file) {
    named.insert(label(f.resource));
    if (std::holds_alternative<v1::Accelerator>(f.resource))
      scope.insert(std::get<v1::Accelerator>(f.resource).name());
    auto it = now.find(label(f.resource));
    if (it == now.end()) {
      steps.push_back({.op = Step::Op::create, .resource = f.resource});
      continue;
    }
    std::vector<std::string> differ;
    for (const std::string& p : f.paths)
      if (!same_at(message_of(f.resource), message_of(*it->second), p)) differ.push_back(p);
    if (differ.empty()) continue;
    // A resource_version in the file (a `get -o yaml` kept as is) is the
    // condition; otherwise the one just read.
    uint64_t v = version_of(f.resource) ? version_of(f.resource) : version_of(*it->second);
    steps.push_back({.op = Step::Op::update,
                     .resource = f.resource,
                     .paths = std::move(differ),
                     .current = *it->second,
                     .version = v});
  }
  if (prune)
    for (auto it = current.rbegin(); it != current.rend(); ++it)  // children first
      if (!std::holds_alternative<v1::Accelerator>(*it) && scope.count(path_of(*it)[0]) &&
          !named.count(label(*it)))
        steps.push_back({.op = Step::Op::remove, .resource = *it});
  return steps;
}

// The calls, one set per kind.
grpc::Status create(Context& ctx, const v1::Accelerator& r) {
  v1::Accelerator out;
  return ctx.admin(&AdminStub::CreateAccelerator, r, out);
}
grpc::Status create(Context& ctx, const v1::Listener& r) {
  v1::Listener out;
  return ctx.admin(&AdminStub::CreateListener, r, out);
}
grpc::Status create(Context& ctx, const v1::EndpointGroup& r) {
  v1::EndpointGroup out;
  return ctx.admin(&AdminStub::CreateEndpointGroup, r, out);
}
grpc::Status create(Context& ctx, const v1::Endpoint& r) {
  v1::Endpoint out;
  return ctx.admin(&AdminStub::CreateEndpoint, r, out);
}

template <typename Request, typename T>
Request update_request(T resource, const Step& step) {
  Request req;
  resource.set_resource_version(step.version);
  for (const std::string& p : step.paths) req.mutable_update_mask()->add_paths(p);
  if constexpr (std::is_same_v<T, v1::Accelerator>)
    *req.mutable_accelerator() = std::move(resource);
  else if constexpr (std::is_same_v<T, v1::Listener>)
    *req.mutable_listener() = std::move(resource);
  else if constexpr (std::is_same_v<T, v1::EndpointGroup>)
    *req.mutable_endpoint_group() = std::move(resource);
  else
    *req.mutable_endpoint() = std::move(resource);
  return req;
}
grpc::Status update(Context& ctx, const v1::Accelerator& r, const Step& step) {
  v1::Accelerator out;
  return ctx.admin(&AdminStub::UpdateAccelerator,
                   update_request<v1::UpdateAcceleratorRequest>(r, step), out);
}
grpc::Status update(Context& ctx, const v1::Listener& r, const Step& step) {
  v1::Listener out;
  return ctx.admin(&AdminStub::UpdateListener, update_request<v1::UpdateListenerRequest>(r, step),
                   out);
}
grpc::Status update(Context& ctx, const v1::EndpointGroup& r, const Step& step) {
  v1::EndpointGroup out;
  return ctx.admin(&AdminStub::UpdateEndpointGroup,
                   update_request<v1::UpdateEndpointGroupRequest>(r, step), out);
}
grpc::Status update(Context& ctx, const v1::Endpoint& r, const Step& step) {
  v1::Endpoint out;
  return ctx.admin(&AdminStub::UpdateEndpoint, update_request<v1::UpdateEndpointRequest>(r, step),
                   out);
}

grpc::Status erase(Context&, const v1::Accelerator&) {
  return grpc::Status(grpc::StatusCode::INTERNAL, "accelerators are never pruned");
}
grpc::Status erase(Context& ctx, const v1::Listener& r) {
  v1::ListenerKey key;
  key.set_accelerator(r.accelerator());
  key.set_name(r.name());
  v1::DeleteResponse out;
  return ctx.admin(&AdminStub::DeleteListener, key, out);
}
grpc::Status erase(Context& ctx, const v1::EndpointGroup& r) {
  v1::EndpointGroupKey key;
  key.set_accelerator(r.accelerator());
  key.set_listener(r.listener());
  key.set_name(r.name());
  v1::DeleteResponse out;
  return ctx.admin(&AdminStub::DeleteEndpointGroup, key, out);
}
grpc::Status erase(Context& ctx, const v1::Endpoint& r) {
  v1::EndpointKey key;
  key.set_accelerator(r.accelerator());
  key.set_listener(r.listener());
  key.set_endpoint_group(r.endpoint_group());
  key.set_address(r.address());
  v1::DeleteResponse out;
  return ctx.admin(&AdminStub::DeleteEndpoint, key, out);
}

std::string changes(const Step& step) {
  std::string out;
  for (const std::string& p : step.paths)
    out += (out.empty() ? "" : "; ") + p + " " + field_text(message_of(step.current), p) + " -> " +
           field_text(message_of(step.resource), p);
  return out;
}

std::string summary(const std::vector<Step>& steps, const char* create, const char* update,
                    const char* remove) {
  size_t n[3] = {0, 0, 0};
  for (const Step& s : steps) ++n[static_cast<int>(s.op)];
  return std::to_string(n[0]) + " " + create + ", " + std::to_string(n[1]) + " " + update + ", " +
         std::to_string(n[2]) + " " + remove;
}

struct FileFlags {
  std::string file;
  bool prune = false;
};

// Reads and parses -f; the error is a usage error (exit 2) or the
// file's own (exit 4).
int read_config(Context& ctx, const FileFlags& f, std::vector<FileResource>& out) {
  std::string text;
  if (f.file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    Result<std::string> read = read_file(f.file);
    if (!read.ok()) return ctx.fail(kExitUsage, read.error());
    text = std::move(*read);
  }
  Result<std::vector<FileResource>> parsed = parse_config(text);
  if (!parsed.ok())
    return ctx.fail(kExitInvalid, (f.file == "-" ? "stdin" : f.file) + ": " + parsed.error());
  out = std::move(*parsed);
  return kExitOk;
}

// The plan for -f against the controller, or an exit code.
int make_plan(Context& ctx, const FileFlags& f, std::vector<Step>& steps) {
  std::vector<FileResource> file;
  if (int rc = read_config(ctx, f, file); rc != kExitOk) return rc;
  std::vector<AnyResource> current;
  if (grpc::Status s = read_current(ctx, "", current); !s.ok()) return ctx.fail(s);
  steps = plan(std::move(file), current, f.prune);
  return kExitOk;
}

int run_diff(Context& ctx, const FileFlags& f) {
  std::vector<Step> steps;
  if (int rc = make_plan(ctx, f, steps); rc != kExitOk) return rc;
  for (const Step& s : steps) {
    switch (s.op) {
      case Step::Op::create:
        ctx.out << "+ create " << label(s.resource) << '\n';
        break;
      case Step::Op::update:
        ctx.out << "~ update " << label(s.resource) << ": " << changes(s) << '\n';
        break;
      case Step::Op::remove:
        ctx.out << "- delete " << label(s.resource) << '\n';
        break;
    }
  }
  if (steps.empty()) {
    ctx.out << "no changes\n";
    return kExitOk;
  }
  ctx.out << summary(steps, "to create", "to update", "to delete") << '\n';
  return 1;  // like diff(1): the file and the controller differ
}

int run_apply(Context& ctx, const FileFlags& f) {
  std::vector<Step> steps;
  if (int rc = make_plan(ctx, f, steps); rc != kExitOk) return rc;
  if (steps.empty()) {
    ctx.out << "no changes\n";
    return kExitOk;
  }
  size_t done = 0;
  for (const Step& step : steps) {
    grpc::Status s = std::visit(
        [&](const auto& r) {
          switch (step.op) {
            case Step::Op::create:
              return create(ctx, r);
            case Step::Op::update:
              return update(ctx, r, step);
            default:
              return erase(ctx, r);
          }
        },
        step.resource);
    if (!s.ok()) {
      if (done > 0)
        ctx.err << "onrampctl: " << done << " of " << steps.size()
                << " changes were applied before this one failed\n";
      return ctx.fail(
          grpc::Status(s.error_code(), label(step.resource) + ": " + s.error_message()));
    }
    ++done;
    switch (step.op) {
      case Step::Op::create:
        ctx.out << "created " << label(step.resource) << '\n';
        break;
      case Step::Op::update: {
        std::string fields;
        for (const std::string& p : step.paths) fields += (fields.empty() ? "" : ", ") + p;
        ctx.out << "updated " << label(step.resource) << " (" << fields << ")\n";
        break;
      }
      case Step::Op::remove:
        ctx.out << "deleted " << label(step.resource) << '\n';
        break;
    }
  }
  ctx.out << "applied: " << summary(steps, "created", "updated", "deleted") << '\n';
  return kExitOk;
}

int run_export(Context& ctx, const std::string& accelerator) {
  std::vector<AnyResource> current;
  if (grpc::Status s = read_current(ctx, accelerator, current); !s.ok()) return ctx.fail(s);
  if (!accelerator.empty() && current.empty())
    return ctx.fail(kExitNotFound, "no accelerator " + quote(accelerator));
  if (ctx.globals.format == Format::kJson)
    ctx.out << to_config_json(current);
  else if (ctx.globals.format == Format::kTable || ctx.globals.format == Format::kYaml)
    ctx.out << to_config_yaml(current);
  else
    return ctx.fail(kExitUsage, "export prints yaml (the default) or json");
  return kExitOk;
}

void add_file_flags(CommandTree& tree, CLI::App* cmd, FileFlags& f, const std::string& prune_help) {
  tree.file(cmd->add_option("-f,--filename", f.file,
                            "The configuration: a YAML or JSON file of resources, - for stdin")
                ->required());
  cmd->add_flag("--prune", f.prune, prune_help);
}

}  // namespace

void add_config_commands(CommandTree& tree) {
  auto a = std::make_shared<FileFlags>();
  CLI::App* apply = tree.command(
      tree.root, "apply",
      "Make the controller's configuration what a file says: create what is missing, update "
      "what differs",
      "  onrampctl export > onramp.yaml     # once; then edit, review, keep in git\n"
      "  onrampctl diff -f onramp.yaml\n"
      "  onrampctl apply -f onramp.yaml --prune\n"
      "  cat *.yaml | onrampctl apply -f -\n",
      [a](Context& ctx) { return run_apply(ctx, *a); });
  add_file_flags(tree, apply, *a,
                 "Also delete the listeners, endpoint groups and endpoints of the file's "
                 "accelerators that the file does not name");

  auto d = std::make_shared<FileFlags>();
  CLI::App* diff = tree.command(
      tree.root, "diff",
      "Show what apply would change; exit 1 when something differs, 0 when nothing does",
      "  onrampctl diff -f onramp.yaml --prune\n", [d](Context& ctx) { return run_diff(ctx, *d); });
  add_file_flags(tree, diff, *d, "Show what apply --prune would delete too");

  auto accelerator = std::make_shared<std::string>();
  tree.command(tree.root, "export",
               "Print the configuration (every accelerator, or one) as the file apply reads",
               "  onrampctl export > onramp.yaml\n"
               "  onrampctl export --accelerator web -o json\n",
               [accelerator](Context& ctx) { return run_export(ctx, *accelerator); })
      ->add_option("--accelerator", *accelerator, "Only this accelerator and what it holds");
}

}  // namespace onramp::cli
