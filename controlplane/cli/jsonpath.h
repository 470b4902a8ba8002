// -o jsonpath=EXPR: a small JSONPath for scripts, applied to the JSON that
// -o json prints. Text outside braces is printed as it is; each {...} prints
// what it picks: {.field}, {.list[*].field}, {.list[0].field}, nested as deep
// as wanted, {.} for the whole answer. An expression with no braces is one
// path (".pops[*].id").
#pragma once

#include <google/protobuf/message.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace onramp::cli {

class JsonPath {
 public:
  // The error says what is wrong and where ("at character 7").
  static Result<JsonPath> parse(std::string_view text);

  // Strings as they are, numbers and booleans as JSON writes them, objects
  // and lists as compact JSON (keys sorted); several picks of one {...} separated by
  // spaces; a newline at the end. A field the message type does not have is
  // an error; one that is merely unset, or an index past the end, picks
  // nothing.
  Result<std::string> apply(const google::protobuf::Message& message) const;

 private:
  struct Step {
    enum Kind { kField, kIndex, kAll } kind = kField;
    std::string field;  // kField
    size_t index = 0;   // kIndex
  };
  struct Piece {
    std::string literal;  // printed first
    bool has_path = false;
    std::string text;         // the expression, for errors
    std::vector<Step> steps;  // empty: the whole answer
  };
  std::vector<Piece> pieces_;
};

}  // namespace onramp::cli
