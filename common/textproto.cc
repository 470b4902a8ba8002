#include "common/textproto.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include "common/files.h"

namespace onramp {
namespace {

// Keeps the first error for our message instead of protobuf's log.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first.empty())
      first =
          "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  std::string first;
};

}  // namespace

Status parse_text_proto(std::string_view text, google::protobuf::Message& msg) {
  google::protobuf::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (parser.ParseFromString(std::string(text), &msg)) return ok_status();
  return error(errors.first.empty() ? "not a " + msg.GetDescriptor()->name() + " in text format"
                                    : errors.first);
}

Status load_text_proto_file(const std::string& path, google::protobuf::Message& msg) {
  Result<std::string> text = read_file(path);
  if (!text.ok()) return text.status();
  return parse_text_proto(*text, msg).prefixed(path);
}

}  // namespace onramp
