#include "controlplane/cli/output.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <regex>

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
// than this string: a number (sexagesimal "02:00:10" included), a boolean, a
// null, or a scalar that starts or contains YAML syntax.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  static const std::regex kSpecial(
      "(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|"
      "null|Null|NULL|~)",
      std::regex::optimize);
  static const std::regex kNumber(
      "[-+]?(?:[0-9][0-9_:]*(?:\\.[0-9_]*)?|\\.[0-9_]+)(?:[eE][-+]?[0-9]+)?|"
      "[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)|0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+",
      std::regex::optimize);
  if (std::regex_match(s, kSpecial) || std::regex_match(s, kNumber)) return true;
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s[0]) != std::string_view::npos) return true;
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

std::string quote(const std::string& s) {
  if (!needs_quotes(s)) return s;
  std::string q = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        q += "\\\"";
        break;
      case '\\':
        q += "\\\\";
        break;
      case '\n':
        q += "\\n";
        break;
      case '\t':
        q += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          q += buf;
        } else {
          q += static_cast<char>(c);
        }
    }
  }
  return q + "\"";
}

std::string base64(const std::string& in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string yaml_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "0";
}

// One scalar (singular, or element `index` of a repeated field).
std::string yaml_scalar(const pb::Message& m, const pb::FieldDescriptor* f, int index) {
  const pb::Reflection* r = m.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return yaml_double(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return yaml_double(rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false";
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      int v = rep ? r->GetRepeatedEnumValue(m, f, index) : r->GetEnumValue(m, f);
      const pb::EnumValueDescriptor* e = f->enum_type()->FindValueByNumber(v);
      return e ? e->name() : std::to_string(v);
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string s = rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f);
      return f->type() == pb::FieldDescriptor::TYPE_BYTES ? quote(base64(s)) : quote(s);
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return "";
}

void emit_message(const pb::Message& m, size_t indent, std::string& out);

// A message as the value after "key:" or "- ": "{}" on the same line when it
// prints nothing, else its fields on the following lines.
void emit_nested(const pb::Message& m, size_t indent, std::string& out) {
  std::string body;
  emit_message(m, indent, body);
  if (body.empty()) {
    out += " {}\n";
  } else {
    out += '\n';
    out += body;
  }
}

// A list item that is a message: "- first: field" then the rest aligned
// under it.
void emit_list_message(const pb::Message& m, size_t indent, std::string& out) {
  std::string body;
  emit_message(m, indent + 2, body);
  if (body.empty()) {
    out += std::string(indent, ' ') + "- {}\n";
    return;
  }
  body.replace(0, indent + 2, std::string(indent, ' ') + "- ");
  out += body;
}

std::string map_key_text(const pb::Message& entry) {
  const pb::FieldDescriptor* k = entry.GetDescriptor()->map_key();
  std::string s = yaml_scalar(entry, k, -1);
  return s;
}

void emit_message(const pb::Message& m, size_t indent, std::string& out) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  std::string pad(indent, ' ');
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const std::string key = pad + f->name() + ":";
    if (f->is_map()) {
      int n = r->FieldSize(m, f);
      if (n == 0) {
        out += key + " {}\n";
        continue;
      }
      std::vector<const pb::Message*> entries;
      for (int j = 0; j < n; ++j) entries.push_back(&r->GetRepeatedMessage(m, f, j));
      std::sort(entries.begin(), entries.end(), [](const pb::Message* a, const pb::Message* b) {
        return map_key_text(*a) < map_key_text(*b);
      });
      out += key + '\n';
      const pb::FieldDescriptor* vf = f->message_type()->map_value();
      for (const pb::Message* e : entries) {
        out += pad + "  " + map_key_text(*e) + ":";
        if (vf->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)
          emit_nested(e->GetReflection()->GetMessage(*e, vf), indent + 4, out);
        else
          out += ' ' + yaml_scalar(*e, vf, -1) + '\n';
      }
    } else if (f->is_repeated()) {
      int n = r->FieldSize(m, f);
      if (n == 0) {
        out += key + " []\n";
        continue;
      }
      out += key + '\n';
      for (int j = 0; j < n; ++j) {
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE)
          emit_list_message(r->GetRepeatedMessage(m, f, j), indent + 2, out);
        else
          out += pad + "  - " + yaml_scalar(m, f, j) + '\n';
      }
    } else if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) continue;
      out += key;
      emit_nested(r->GetMessage(m, f), indent + 2, out);
    } else {
      if (f->has_presence() && !r->HasField(m, f)) continue;
      out += key + ' ' + yaml_scalar(m, f, -1) + '\n';
    }
  }
}

}  // namespace

std::string to_yaml(const pb::Message& message) {
  std::string out;
  emit_message(message, 0, out);
  return out.empty() ? "{}\n" : out;
}

void print_message(std::ostream& out, Format format, const pb::Message& message,
                   const std::function<void(std::ostream&)>& table) {
  switch (format) {
    case Format::kJson:
      out << to_json(message);
      break;
    case Format::kYaml:
      out << to_yaml(message);
      break;
    case Format::kTable:
      table(out);
      break;
  }
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
