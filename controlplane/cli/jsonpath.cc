#include "controlplane/cli/jsonpath.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "common/text.h"

namespace onramp::cli {
namespace {

namespace pb = google::protobuf;

// One value reached, with the proto field it came from (null at the root)
// and whether it is one element of a repeated field.
struct Node {
  const pb::Value* value;
  const pb::FieldDescriptor* field;
  bool element;
};

// The message type of `node`, when it is a message (not a list, map or
// scalar); the root's is `root`. Well-known types (a Struct) have no fields
// to check names against.
const pb::Descriptor* message_type(const Node& node, const pb::Descriptor* root) {
  if (!node.field) return root->file()->package() == "google.protobuf" ? nullptr : root;
  if (node.field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) return nullptr;
  if (node.field->is_map()) return nullptr;
  if (node.field->is_repeated() && !node.element) return nullptr;
  return node.field->message_type();
}

std::string compact_json(const pb::Value& v);

// protobuf prints a Struct's keys in no fixed order; these go out sorted, so
// the same answer prints the same way every time.
std::string compact_object(const pb::Struct& object) {
  std::map<std::string, const pb::Value*> sorted;
  for (const auto& [key, value] : object.fields()) sorted.emplace(key, &value);
  std::string s = "{";
  for (const auto& [key, value] : sorted) {
    pb::Value name;
    name.set_string_value(key);
    s += (s.size() > 1 ? "," : "") + compact_json(name) + ":" + compact_json(*value);
  }
  return s + "}";
}

std::string compact_json(const pb::Value& v) {
  if (v.kind_case() == pb::Value::kStructValue) return compact_object(v.struct_value());
  if (v.kind_case() == pb::Value::kListValue) {
    std::string s = "[";
    for (const pb::Value& item : v.list_value().values())
      s += (s.size() > 1 ? "," : "") + compact_json(item);
    return s + "]";
  }
  std::string s;
  if (!pb::util::MessageToJsonString(v, &s).ok()) return "null";
  return s;
}

std::string show(const pb::Value& v) {
  switch (v.kind_case()) {
    case pb::Value::kStringValue:
      return v.string_value();
    case pb::Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case pb::Value::kNumberValue: {
      double d = v.number_value();
      // 32-bit integers come as JSON numbers (64-bit ones as strings).
      if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0)
        return std::to_string(static_cast<int64_t>(d));
      return compact_json(v);
    }
    case pb::Value::kNullValue:
      return "null";
    default:
      return compact_json(v);
  }
}

}  // namespace

Result<JsonPath> JsonPath::parse(std::string_view text) {
  JsonPath path;
  std::string where_text(text);
  auto fail = [&](size_t at, const std::string& what) {
    return error(quote(where_text) + " at character " + std::to_string(at + 1) + ": " + what);
  };
  // No braces: the whole text is one expression.
  std::string braced = text.find('{') == std::string_view::npos && !text.empty() && text[0] == '.'
                           ? "{" + std::string(text) + "}"
                           : std::string(text);
  bool wrapped = braced.size() != text.size();
  size_t i = 0;
  Piece piece;
  while (i < braced.size()) {
    if (braced[i] != '{') {
      piece.literal += braced[i++];
      continue;
    }
    size_t open = i;
    size_t close = braced.find('}', open);
    size_t at = wrapped ? 0 : open;  // position in what the user typed
    if (close == std::string::npos) return fail(at, "a '{' without its '}'");
    std::string_view expr = std::string_view(braced).substr(open + 1, close - open - 1);
    size_t base = wrapped ? 0 : open + 1;
    size_t j = 0;
    if (!expr.empty() && expr[0] == '$') ++j;
    if (j >= expr.size() || expr[j] != '.')
      return fail(base + j, "an expression starts with '.' (\"{.name}\", \"{.}\")");
    piece.has_path = true;
    piece.text = "{" + std::string(expr) + "}";
    if (expr.size() == j + 1) ++j;  // {.}: the whole answer
    while (j < expr.size()) {
      if (expr[j] == '.') {
        size_t start = ++j;
        while (j < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[j])) ||
                                   expr[j] == '_' || expr[j] == '-'))
          ++j;
        if (j == start) return fail(base + start, "a field name after '.'");
        piece.steps.push_back(
            {.kind = Step::kField, .field = std::string(expr.substr(start, j - start))});
      } else if (expr[j] == '[') {
        size_t end = expr.find(']', j);
        if (end == std::string_view::npos) return fail(base + j, "a '[' without its ']'");
        std::string_view inside = expr.substr(j + 1, end - j - 1);
        if (inside == "*") {
          piece.steps.push_back({.kind = Step::kAll});
        } else {
          if (inside.empty() || inside.size() > 9 ||
              inside.find_first_not_of("0123456789") != std::string_view::npos)
            return fail(base + j + 1, "an index is [*] or a number, [0] for the first");
          piece.steps.push_back({.kind = Step::kIndex, .index = std::stoul(std::string(inside))});
        }
        j = end + 1;
      } else {
        return fail(base + j, "expected '.field', '[N]' or '[*]'");
      }
    }
    path.pieces_.push_back(std::move(piece));
    piece = Piece();
    i = close + 1;
  }
  if (!piece.literal.empty()) path.pieces_.push_back(std::move(piece));
  if (path.pieces_.empty()) return error("an empty expression; e.g. jsonpath='{.name}'");
  // "name" alone would print "name" whatever the answer: surely meant {.name}.
  if (std::none_of(path.pieces_.begin(), path.pieces_.end(),
                   [](const Piece& p) { return p.has_path; }))
    return error(quote(where_text) + " picks nothing: put the path in braces, e.g. '{.name}'");
  return path;
}

Result<std::string> JsonPath::apply(const pb::Message& message) const {
  pb::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string json;
  if (!pb::util::MessageToJsonString(message, &json, opts).ok())
    return error("cannot print the answer as JSON");
  pb::Value root;
  if (!pb::util::JsonStringToMessage(json, &root).ok())
    return error("cannot read the answer's JSON back");
  const pb::Descriptor* type = message.GetDescriptor();

  std::string out;
  for (const Piece& piece : pieces_) {
    out += piece.literal;
    if (!piece.has_path) continue;
    std::vector<Node> nodes = {{&root, nullptr, false}};
    for (const Step& step : piece.steps) {
      std::vector<Node> next;
      for (const Node& n : nodes) {
        const pb::Value& v = *n.value;
        if (step.kind == Step::kField) {
          if (v.kind_case() != pb::Value::kStructValue)
            return error(piece.text + ": " + quote(step.field) + " is asked of " +
                         (v.kind_case() == pb::Value::kListValue
                              ? "a list; pick its items with [*] or [N] first"
                              : "a value that has no fields"));
          const pb::Descriptor* t = message_type(n, type);
          const pb::FieldDescriptor* f = t ? t->FindFieldByName(step.field) : nullptr;
          if (t && !f)
            return error(piece.text + ": " + t->full_name() + " has no field " + quote(step.field));
          if (!t && n.field && n.field->is_map()) f = n.field->message_type()->map_value();
          auto it = v.struct_value().fields().find(step.field);
          if (it != v.struct_value().fields().end()) next.push_back({&it->second, f, false});
        } else {
          if (v.kind_case() != pb::Value::kListValue)
            return error(piece.text + ": [" +
                         (step.kind == Step::kAll ? std::string("*") : std::to_string(step.index)) +
                         "] is asked of something that is not a list");
          const auto& items = v.list_value().values();
          if (step.kind == Step::kAll) {
            for (const pb::Value& item : items) next.push_back({&item, n.field, true});
          } else if (step.index < static_cast<size_t>(items.size())) {
            next.push_back({&items[static_cast<int>(step.index)], n.field, true});
          }
        }
      }
      nodes = std::move(next);
    }
    for (size_t k = 0; k < nodes.size(); ++k) out += (k ? " " : "") + show(*nodes[k].value);
  }
  return out + "\n";
}

}  // namespace onramp::cli
