#include "common/text.h"

namespace onramp {

std::string printable(std::string_view text, size_t max) {
  static const char hex[] = "0123456789abcdef";
  bool cut = text.size() > max;
  if (cut) text = text.substr(0, max);
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut) out += "...";
  return out;
}

std::string quote(std::string_view text, size_t max) { return "\"" + printable(text, max) + "\""; }

}  // namespace onramp
