// How onrampctl prints what it got: aligned tables (and key: value blocks)
// for people, JSON (protobuf's own printer, proto field names) and YAML (that
// JSON in block style, by yaml-cpp) for programs.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "common/text.h"
#include "controlplane/cli/command.h"

namespace onramp::cli {

// Table cells and field values come from the network (a PoP's Hello, an
// agent's NACK) as well as from operators: newlines and terminal escapes are
// shown escaped, never obeyed, and long values are cut (-o json has them whole).
inline constexpr size_t kMaxCellBytes = 256;
inline constexpr size_t kMaxFieldBytes = 4096;

// Columns with upper-case headers, separated by two spaces; empty cells
// print as "-". The last column is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  // With `wide` (-o wide), the `wide_headers` columns follow the others.
  Table(std::vector<std::string> headers, const std::vector<std::string>& wide_headers, bool wide)
      : headers_(std::move(headers)), wide_(wide) {
    if (wide) headers_.insert(headers_.end(), wide_headers.begin(), wide_headers.end());
  }
  void row(std::vector<std::string> cells) { row(std::move(cells), {}); }
  // A row of a table built with wide headers: `wide_cells` show only with -o wide.
  void row(std::vector<std::string> cells, const std::vector<std::string>& wide_cells) {
    if (wide_) cells.insert(cells.end(), wide_cells.begin(), wide_cells.end());
    for (std::string& c : cells) c = printable(c, kMaxCellBytes);
    rows_.push_back(std::move(cells));
  }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::string> headers_;
  bool wide_ = false;
  std::vector<std::vector<std::string>> rows_;
};

// "key:  value" lines with the values aligned.
class Fields {
 public:
  void add(std::string key, const std::string& value) {
    items_.emplace_back(std::move(key), printable(value, kMaxFieldBytes));
  }
  void print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Every scalar field is printed, set or not (so a script sees `enabled:
// false`); message fields and proto3 `optional` fields only when set.
std::string to_json(const google::protobuf::Message& message);
// `omit`: top-level fields left out (export leaves out what the controller sets).
std::string to_yaml(const google::protobuf::Message& message,
                    const std::vector<std::string>& omit = {});

// Prints `message` as -o asks: JSON, YAML, what the JSONPath picks from its
// JSON, or by calling `table` (table and wide). The error is the JSONPath's:
// a field the message does not have.
Status print_message(std::ostream& out, const Globals& globals,
                     const google::protobuf::Message& message,
                     const std::function<void(std::ostream&)>& table);

// Unix milliseconds as UTC "2024-05-01T10:00:00Z"; "-" for 0.
std::string format_time_ms(int64_t ms);
std::string yes_no(bool b);
// A double with at most `decimals` decimals, trailing zeros dropped.
std::string format_number(double v, int decimals = 1);
std::string join(const google::protobuf::RepeatedPtrField<std::string>& items,
                 const std::string& sep = ",");
// "explanation:" and one numbered step per line (traces); nothing when empty.
void print_explanation(std::ostream& out,
                       const google::protobuf::RepeatedPtrField<std::string>& steps);

}  // namespace onramp::cli
