#include "controlplane/cli/config_file.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "common/ip_address.h"
#include "common/json.h"
#include "common/text.h"
#include "controlplane/cli/output.h"
#include "controlplane/cli/suggest.h"

namespace onramp::cli {
namespace {

namespace pb = google::protobuf;

const std::vector<std::string> kKinds = {"Accelerator", "Listener", "EndpointGroup", "Endpoint"};
// The list responses `list -o yaml` prints, in the same order.
const std::vector<std::string> kListKeys = {"accelerators", "listeners", "endpoint_groups",
                                            "endpoints"};
// Set by the controller: read (resource_version is an update's condition),
// never compared or changed.
const std::set<std::string> kOutputOnly = {"create_time_ms", "update_time_ms", "resource_version"};

AnyResource make(size_t kind) {
  switch (kind) {
    case 0:
      return v1::Accelerator();
    case 1:
      return v1::Listener();
    case 2:
      return v1::EndpointGroup();
    default:
      return v1::Endpoint();
  }
}

pb::Message& mutable_message_of(AnyResource& r) {
  return std::visit([](auto& x) -> pb::Message& { return x; }, r);
}

// The fields that name a resource, parents first.
std::vector<std::string> identity_fields(size_t kind) {
  switch (kind) {
    case 0:
      return {"name"};
    case 1:
      return {"accelerator", "name"};
    case 2:
      return {"accelerator", "listener", "name"};
    default:
      return {"accelerator", "listener", "endpoint_group", "address"};
  }
}

// One document's YAML as protobuf's JSON mapping for `type`, checked
// against its fields; `paths` collects the leaves given (nullptr inside
// repeated fields, whose elements are replaced whole).
Status to_json(const YAML::Node& node, const pb::Descriptor* type, const std::string& prefix,
               bool top, std::string& json, std::vector<std::string>* paths);

Status value_to_json(const YAML::Node& node, const pb::FieldDescriptor* f, const std::string& path,
                     std::string& json, std::vector<std::string>* paths) {
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
    if (!node.IsMap()) return error(path + ": a map of fields is expected");
    return to_json(node, f->message_type(), path + ".", false, json, paths);
  }
  if (!node.IsScalar()) return error(path + ": a single value is expected");
  if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
    bool b = false;
    if (!YAML::convert<bool>::decode(node, b))
      return error(path + ": " + quote(node.Scalar()) + " is not true or false");
    json += b ? "true" : "false";
  } else {
    // Numbers as JSON strings: protobuf's JSON reading takes both, and checks
    // the range.
    json += json_string(node.Scalar());
  }
  return ok_status();
}

Status to_json(const YAML::Node& node, const pb::Descriptor* type, const std::string& prefix,
               bool top, std::string& json, std::vector<std::string>* paths) {
  json += '{';
  bool first = true;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (top && key == "kind") continue;
    const pb::FieldDescriptor* f = type->FindFieldByName(key);
    if (!f) {
      std::vector<std::string> names;
      for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
      std::string msg = prefix + key + ": not a field of " + type->name();
      if (auto best = nearest(key, names)) msg += "; did you mean " + quote(*best) + "?";
      return error(msg);
    }
    if (kv.second.IsNull()) continue;  // "field:" with nothing: not given
    if (!first) json += ',';
    first = false;
    json += json_string(key) + ':';
    std::string path = prefix + key;
    bool managed = !(top && kOutputOnly.count(key));
    if (f->is_repeated()) {
      if (!kv.second.IsSequence()) return error(path + ": a list is expected");
      json += '[';
      for (size_t i = 0; i < kv.second.size(); ++i) {
        if (i) json += ',';
        ONRAMP_RETURN_IF_ERROR(
            value_to_json(kv.second[i], f, path + "[" + std::to_string(i) + "]", json, nullptr));
      }
      json += ']';
      if (paths && managed) paths->push_back(path);
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      ONRAMP_RETURN_IF_ERROR(value_to_json(kv.second, f, path, json, paths));
    } else {
      ONRAMP_RETURN_IF_ERROR(value_to_json(kv.second, f, path, json, nullptr));
      if (paths && managed) paths->push_back(path);
    }
  }
  json += '}';
  return ok_status();
}

// The kind a map without `kind` is: the only one that has all its fields.
Result<size_t> infer_kind(const YAML::Node& node) {
  std::vector<size_t> fits;
  for (size_t k = 0; k < kKinds.size(); ++k) {
    AnyResource r = make(k);
    const pb::Descriptor* d = mutable_message_of(r).GetDescriptor();
    bool all = true;
    for (const auto& kv : node) all = all && d->FindFieldByName(kv.first.Scalar()) != nullptr;
    if (all) fits.push_back(k);
  }
  if (fits.size() == 1) return fits[0];
  return error("kind: required (Accelerator, Listener, EndpointGroup or Endpoint)");
}

Result<FileResource> read_resource(const YAML::Node& node, std::optional<size_t> kind_hint,
                                   const std::string& where) {
  if (!node.IsMap()) return error(where + ": a map of fields is expected");
  size_t kind = 0;
  if (const YAML::Node k = node["kind"]) {
    if (!k.IsScalar()) return error(where + ": kind: a name is expected");
    auto it = std::find(kKinds.begin(), kKinds.end(), k.Scalar());
    if (it == kKinds.end()) {
      std::string msg = where + ": kind: " + quote(k.Scalar()) +
                        " is not one of Accelerator, Listener, EndpointGroup, Endpoint";
      if (auto best = nearest(k.Scalar(), kKinds)) msg += "; did you mean " + quote(*best) + "?";
      return error(msg);
    }
    kind = static_cast<size_t>(it - kKinds.begin());
  } else if (kind_hint) {
    kind = *kind_hint;
  } else {
    Result<size_t> inferred = infer_kind(node);
    if (!inferred.ok()) return inferred.status().prefixed(where);
    kind = *inferred;
  }
  FileResource out{.resource = make(kind), .paths = {}, .where = where};
  pb::Message& msg = mutable_message_of(out.resource);
  std::string json;
  if (Status s = to_json(node, msg.GetDescriptor(), "", true, json, &out.paths); !s.ok())
    return std::move(s).prefixed(where + " (" + kKinds[kind] + ")");
  pb::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  if (auto s = pb::util::JsonStringToMessage(json, &msg, opts); !s.ok())
    return error(where + " (" + kKinds[kind] + "): " + std::string(s.message()));
  std::vector<std::string> ids = identity_fields(kind);
  for (const std::string& id : ids) {
    const pb::FieldDescriptor* f = msg.GetDescriptor()->FindFieldByName(id);
    if (msg.GetReflection()->GetString(msg, f).empty())
      return error(where + " (" + kKinds[kind] + "): " + id + ": required");
    std::erase(out.paths, id);
  }
  if (auto* e = std::get_if<v1::Endpoint>(&out.resource)) {
    auto a = IpAddress::parse(e->address());
    if (!a)
      return error(where + " (Endpoint): address: " + quote(e->address()) +
                   " is not an IPv4 or IPv6 address");
    e->set_address(a->to_string());
  }
  return out;
}

}  // namespace

const char* kind_name(const AnyResource& r) { return kKinds[r.index()].c_str(); }

std::string label(const AnyResource& r) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, v1::Accelerator>)
          return "accelerator " + x.name();
        else if constexpr (std::is_same_v<T, v1::Listener>)
          return "listener " + x.accelerator() + "/" + x.name();
        else if constexpr (std::is_same_v<T, v1::EndpointGroup>)
          return "endpoint group " + x.accelerator() + "/" + x.listener() + "/" + x.name();
        else
          return "endpoint " + x.accelerator() + "/" + x.listener() + "/" + x.endpoint_group() +
                 "/" + x.address();
      },
      r);
}

const pb::Message& message_of(const AnyResource& r) {
  return std::visit([](const auto& x) -> const pb::Message& { return x; }, r);
}

Result<std::vector<FileResource>> parse_config(const std::string& text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return error("line " + std::to_string(e.mark.line + 1) + ", column " +
                 std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  std::vector<FileResource> out;
  std::map<std::string, std::string> seen;  // label -> where
  auto add = [&](Result<FileResource> r) -> Status {
    if (!r.ok()) return r.status();
    std::string name = label(r->resource);
    if (auto [it, fresh] = seen.emplace(name, r->where); !fresh)
      return error(r->where + ": " + name + " is also " + it->second);
    out.push_back(std::move(*r));
    return ok_status();
  };
  for (size_t d = 0; d < docs.size(); ++d) {
    const YAML::Node& doc = docs[d];
    std::string where = "document " + std::to_string(d + 1);
    if (doc.IsNull()) continue;
    if (doc.IsSequence()) {
      for (size_t i = 0; i < doc.size(); ++i)
        ONRAMP_RETURN_IF_ERROR(
            add(read_resource(doc[i], std::nullopt, where + ", item " + std::to_string(i + 1))));
      continue;
    }
    if (!doc.IsMap()) return error(where + ": a map of fields is expected");
    // A list response: `accelerators:` and the rest, each a list.
    bool listed = doc.size() > 0 && !doc["kind"];
    for (const auto& kv : doc)
      listed = listed &&
               std::find(kListKeys.begin(), kListKeys.end(), kv.first.Scalar()) != kListKeys.end();
    if (listed) {
      for (const auto& kv : doc) {
        size_t kind = static_cast<size_t>(
            std::find(kListKeys.begin(), kListKeys.end(), kv.first.Scalar()) - kListKeys.begin());
        if (kv.second.IsNull()) continue;
        if (!kv.second.IsSequence())
          return error(where + ": " + kListKeys[kind] + ": a list is expected");
        for (size_t i = 0; i < kv.second.size(); ++i)
          ONRAMP_RETURN_IF_ERROR(add(read_resource(
              kv.second[i], kind, where + ", " + kListKeys[kind] + "[" + std::to_string(i) + "]")));
      }
      continue;
    }
    ONRAMP_RETURN_IF_ERROR(add(read_resource(doc, std::nullopt, where)));
  }
  return out;
}

std::string to_config_yaml(const std::vector<AnyResource>& resources) {
  const std::vector<std::string> omit(kOutputOnly.begin(), kOutputOnly.end());
  std::string out;
  for (const AnyResource& r : resources) {
    if (!out.empty()) out += "---\n";
    out += std::string("kind: ") + kind_name(r) + "\n" + to_yaml(message_of(r), omit);
  }
  return out;
}

namespace {

// JSON of a node read from protobuf's JSON: strings were quoted (tag "!"),
// numbers, booleans and null were not.
void write_json(const YAML::Node& node, const std::string& indent, std::string& out) {
  if (node.IsMap()) {
    if (node.size() == 0) {
      out += "{}";
      return;
    }
    out += "{";
    bool first = true;
    for (const auto& kv : node) {
      out += (first ? "\n" : ",\n") + indent + "  " + json_string(kv.first.Scalar()) + ": ";
      write_json(kv.second, indent + "  ", out);
      first = false;
    }
    out += "\n" + indent + "}";
  } else if (node.IsSequence()) {
    if (node.size() == 0) {
      out += "[]";
      return;
    }
    out += "[";
    for (size_t i = 0; i < node.size(); ++i) {
      out += (i ? ",\n" : "\n") + indent + "  ";
      write_json(node[i], indent + "  ", out);
    }
    out += "\n" + indent + "]";
  } else if (node.Tag() == "!") {
    out += json_string(node.Scalar());
  } else {
    out += node.IsNull() ? "null" : node.Scalar();
  }
}

}  // namespace

std::string to_config_json(const std::vector<AnyResource>& resources) {
  std::string out = "[";
  for (size_t i = 0; i < resources.size(); ++i) {
    YAML::Node object = YAML::Load(to_json(message_of(resources[i])));
    for (const std::string& field : kOutputOnly) object.remove(field);
    // The kind first, as in the YAML.
    YAML::Node doc;
    doc["kind"] = kind_name(resources[i]);
    doc["kind"].SetTag("!");
    for (const auto& kv : object) doc[kv.first.Scalar()] = kv.second;
    out += i ? ",\n  " : "\n  ";
    write_json(doc, "  ", out);
  }
  return out + (resources.empty() ? "]\n" : "\n]\n");
}

namespace {

// The message that holds the last field of `path`, and that field; nullptr
// when `path` is not one.
const pb::Message* walk(const pb::Message& m, const std::string& path,
                        const pb::FieldDescriptor*& leaf) {
  const pb::Message* at = &m;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    const pb::FieldDescriptor* f =
        at->GetDescriptor()->FindFieldByName(path.substr(start, dot - start));
    if (!f) return nullptr;
    if (dot == std::string::npos) {
      leaf = f;
      return at;
    }
    if (f->is_repeated() || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) return nullptr;
    at = &at->GetReflection()->GetMessage(*at, f);
    start = dot + 1;
  }
}

}  // namespace

std::string field_text(const pb::Message& m, const std::string& path) {
  const pb::FieldDescriptor* f = nullptr;
  const pb::Message* at = walk(m, path, f);
  if (!at) return "?";
  pb::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  const pb::Reflection* r = at->GetReflection();
  std::string out, value;
  if (f->is_repeated()) {
    out = "[";
    for (int i = 0; i < r->FieldSize(*at, f); ++i) {
      printer.PrintFieldValueToString(*at, f, i, &value);
      while (!value.empty() && value.back() == ' ') value.pop_back();
      out += (i ? ", " : "") +
             (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE ? "{" + value + "}" : value);
    }
    return out + "]";
  }
  if (f->has_presence() && !r->HasField(*at, f)) return "unset";
  printer.PrintFieldValueToString(*at, f, -1, &value);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

bool same_at(const pb::Message& a, const pb::Message& b, const std::string& path) {
  return field_text(a, path) == field_text(b, path);
}

}  // namespace onramp::cli
