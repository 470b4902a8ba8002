#include "controlplane/cli/output.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <regex>

#include "controlplane/cli/jsonpath.h"

namespace onramp::cli {

namespace pb = google::protobuf;

void Table::print(std::ostream& out, const std::string& indent) const {
  std::vector<size_t> width(headers_.size());
  for (size_t c = 0; c < headers_.size(); ++c) width[c] = headers_[c].size();
  for (const auto& r : rows_)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c)
      width[c] = std::max(width[c], r[c].empty() ? 1 : r[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = indent;
    for (size_t c = 0; c < headers_.size(); ++c) {
      std::string cell = c < cells.size() && !cells[c].empty() ? cells[c] : "-";
      s += cell;
      if (c + 1 < headers_.size()) s += std::string(width[c] - cell.size() + 2, ' ');
    }
    out << s << '\n';
  };
  line(headers_);
  for (const auto& r : rows_) line(r);
}

void Fields::print(std::ostream& out, const std::string& indent) const {
  size_t width = 0;
  for (const auto& [k, v] : items_) width = std::max(width, k.size());
  for (const auto& [k, v] : items_)
    out << indent << k << ':' << std::string(width - k.size() + 2, ' ') << (v.empty() ? "-" : v)
        << '\n';
}

std::string to_json(const pb::Message& message) {
  pb::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string s;
  auto status = pb::util::MessageToJsonString(message, &s, opts);
  if (!status.ok()) return "{\"error\": \"cannot print as JSON\"}\n";
  return s;
}

namespace {

// True when YAML (1.1 or 1.2) would read `s`, unquoted, as something other
// than a string: a number (sexagesimal "02:00:10" included), a boolean or a
// null. yaml-cpp quotes what YAML syntax needs; these it would print plain.
bool reads_as_other_type(const std::string& s) {
  static const std::regex kSpecial(
      "(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|"
      "null|Null|NULL|~)",
      std::regex::optimize);
  static const std::regex kNumber(
      "[-+]?(?:[0-9][0-9_:]*(?:\\.[0-9_]*)?|\\.[0-9_]+)(?:[eE][-+]?[0-9]+)?|"
      "[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)|0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+",
      std::regex::optimize);
  return std::regex_match(s, kSpecial) || std::regex_match(s, kNumber);
}

// protobuf's JSON writes 64-bit integers, map keys and special doubles as
// strings; only strings, enum names and well-known message types are text.
bool is_text(const pb::FieldDescriptor* f) {
  return !f || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING ||
         f->cpp_type() == pb::FieldDescriptor::CPPTYPE_ENUM ||
         f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
}

bool is_floating(const pb::FieldDescriptor* f) {
  return f && (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE ||
               f->cpp_type() == pb::FieldDescriptor::CPPTYPE_FLOAT);
}

// A scalar of `field` as protobuf's JSON mapping wrote it. JSON strings
// (tagged "!") that stand for numbers go out as YAML numbers; text is quoted
// when YAML would read it as another type.
void emit_scalar(YAML::Emitter& out, const YAML::Node& node, const pb::FieldDescriptor* field) {
  const std::string& s = node.Scalar();
  if (node.Tag() != "!") {
    out << s;
  } else if (is_floating(field) && (s == "NaN" || s == "Infinity" || s == "-Infinity")) {
    out << (s == "NaN" ? ".nan" : s == "Infinity" ? ".inf" : "-.inf");
  } else if (!is_text(field)) {
    out << s;
  } else if (reads_as_other_type(s)) {
    out << YAML::DoubleQuoted << s;
  } else {
    out << s;
  }
}

void emit_object(YAML::Emitter& out, const YAML::Node& object, const pb::Descriptor* type);

// One value of `field` (an element, for repeated fields).
void emit_single(YAML::Emitter& out, const YAML::Node& node, const pb::FieldDescriptor* field) {
  if (node.IsMap())
    emit_object(out, node, field ? field->message_type() : nullptr);
  else
    emit_scalar(out, node, field);
}

void emit_value(YAML::Emitter& out, const YAML::Node& node, const pb::FieldDescriptor* field) {
  if (field && field->is_map() && node.IsMap()) {
    if (node.size() == 0) {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
      return;
    }
    // Sorted, so the same map prints the same way every time.
    std::map<std::string, std::pair<YAML::Node, YAML::Node>> entries;
    for (const auto& kv : node) entries.emplace(kv.first.Scalar(), std::pair(kv.first, kv.second));
    const pb::Descriptor* entry = field->message_type();
    out << YAML::BeginMap;
    for (const auto& [text, kv] : entries) {
      const auto& [key, value] = kv;
      out << YAML::Key;
      emit_scalar(out, key, entry->map_key());
      out << YAML::Value;
      emit_single(out, value, entry->map_value());
    }
    out << YAML::EndMap;
  } else if (node.IsSequence()) {
    if (node.size() == 0) {
      out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
      return;
    }
    out << YAML::BeginSeq;
    for (const YAML::Node& item : node) emit_single(out, item, field);
    out << YAML::EndSeq;
  } else {
    emit_single(out, node, field);
  }
}

// A message's JSON object, its fields in the order protobuf printed them.
void emit_object(YAML::Emitter& out, const YAML::Node& object, const pb::Descriptor* type) {
  if (object.size() == 0) {
    out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    return;
  }
  out << YAML::BeginMap;
  for (const auto& kv : object) {
    const std::string& name = kv.first.Scalar();
    out << YAML::Key << name << YAML::Value;
    emit_value(out, kv.second, type ? type->FindFieldByName(name) : nullptr);
  }
  out << YAML::EndMap;
}

}  // namespace

// The JSON of the message, read back by yaml-cpp (YAML is a superset of
// JSON) and emitted in block style; the descriptor says which JSON strings
// are numbers.
std::string to_yaml(const pb::Message& message, const std::vector<std::string>& omit) {
  pb::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string json;
  if (!pb::util::MessageToJsonString(message, &json, opts).ok()) return "error: cannot print\n";
  YAML::Emitter out;
  YAML::Node object = YAML::Load(json);
  for (const std::string& field : omit) object.remove(field);
  emit_object(out, object, message.GetDescriptor());
  return std::string(out.c_str()) + "\n";
}

Status print_message(std::ostream& out, const Globals& globals, const pb::Message& message,
                     const std::function<void(std::ostream&)>& table) {
  switch (globals.format) {
    case Format::kJson:
      out << to_json(message);
      break;
    case Format::kYaml:
      out << to_yaml(message);
      break;
    case Format::kJsonPath: {
      Result<JsonPath> path = JsonPath::parse(globals.jsonpath);
      if (!path.ok()) return path.status().prefixed("--output jsonpath");
      Result<std::string> picked = path->apply(message);
      if (!picked.ok()) return picked.status().prefixed("--output jsonpath");
      out << *picked;
      break;
    }
    case Format::kTable:
    case Format::kWide:
      table(out);
      break;
  }
  return ok_status();
}

std::string format_time_ms(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string yes_no(bool b) { return b ? "yes" : "no"; }

std::string format_number(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string join(const pb::RepeatedPtrField<std::string>& items, const std::string& sep) {
  std::string s;
  for (const std::string& i : items) {
    if (!s.empty()) s += sep;
    s += i;
  }
  return s;
}

void print_explanation(std::ostream& out, const pb::RepeatedPtrField<std::string>& steps) {
  if (steps.empty()) return;
  out << "explanation:\n";
  int n = 1;
  for (const std::string& step : steps) out << "  " << n++ << ". " << step << '\n';
}

}  // namespace onramp::cli
