// What to say when the command line names a command or a flag that does not
// exist: the word itself, and the nearest valid one of the command the user
// was in ("did you mean"), when one is close enough to be a typo.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace onramp::cli {

// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate `word` is most likely a typo of: the nearest within a few
// edits (fewer for short words), else the only one it is a prefix of;
// nullopt when none is close. Ties go to the first candidate.
std::optional<std::string> nearest(std::string_view word,
                                   const std::vector<std::string>& candidates);

// After a failed parse of `args` (without the program name, in the order
// given) by `root`: `unknown command "foo"; did you mean "pop"?` or `unknown
// flag "--outptu" for "pop list"; did you mean "--output"?`. nullopt when
// nothing on the line was left over as an unknown command or flag.
std::optional<std::string> explain_unknown(const CLI::App& root,
                                           const std::vector<std::string>& args);

}  // namespace onramp::cli
