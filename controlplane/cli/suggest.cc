#include "controlplane/cli/suggest.h"

#include <CLI/CLI.hpp>
#include <algorithm>

#include "common/text.h"

namespace onramp::cli {
namespace {

// "pop list": the commands from the root down to `app`.
std::string path_of(const CLI::App& app) {
  std::string path;
  for (const CLI::App* a = &app; a->get_parent() != nullptr; a = a->get_parent())
    path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  return names;
}

// Long flags valid here: the command's own and, since flags fall through to
// the parent commands, every parent's.
std::vector<std::string> long_flags(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* a = &app; a != nullptr; a = a->get_parent())
    for (const CLI::Option* opt : a->get_options())
      for (const std::string& n : opt->get_lnames()) names.push_back(n);
  return names;
}

std::string unknown_command(const CLI::App& where, const std::string& word) {
  std::string path = path_of(where);
  std::string prefix = path.empty() ? "" : path + " ";
  std::string msg = "unknown command " + quote(prefix + word);
  if (auto best = nearest(word, subcommand_names(where)))
    msg += "; did you mean " + quote(prefix + *best) + "?";
  return msg;
}

std::string unknown_flag(const CLI::App& where, const std::string& arg) {
  std::string flag = arg.substr(0, arg.find('='));
  std::string path = path_of(where);
  std::string msg = "unknown flag " + quote(flag) + (path.empty() ? "" : " for " + quote(path));
  std::string bare = flag.substr(flag.find_first_not_of('-'));
  if (auto best = nearest(bare, long_flags(where)))
    msg += "; did you mean " + quote("--" + *best) + "?";
  return msg;
}

}  // namespace

size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: Levenshtein plus the swap of two neighbours,
  // the commonest typo ("outptu").
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::optional<std::string> nearest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  if (word.empty()) return std::nullopt;
  // Two edits, a third of the word for long ones; never as many edits as
  // the word has letters (any two-letter word is two edits from any other).
  size_t allowed = std::min(std::max<size_t>(2, word.size() / 3), word.size() - 1);
  const std::string* best = nullptr;
  size_t best_distance = allowed + 1;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  if (best) return *best;
  // "acc" for "accelerator": a prefix of exactly one.
  if (word.size() < 3) return std::nullopt;
  std::vector<const std::string*> extended;
  for (const std::string& c : candidates)
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0) extended.push_back(&c);
  if (extended.size() == 1) return *extended.front();
  return std::nullopt;
}

std::optional<std::string> explain_unknown(const CLI::App& root,
                                           const std::vector<std::string>& args) {
  // The command the user was in: the deepest one parsed.
  const CLI::App* where = &root;
  for (auto subs = where->get_subcommands(); !subs.empty(); subs = where->get_subcommands())
    where = subs.front();
  std::vector<std::string> left = root.remaining(true);
  auto was_left = [&](const std::string& a) {
    return std::find(left.begin(), left.end(), a) != left.end();
  };
  // An unknown flag first: the word after it is probably its value, left
  // over too.
  for (const std::string& a : args)
    if (a.size() > 1 && a[0] == '-' && a != "--" && was_left(a)) return unknown_flag(*where, a);
  if (subcommand_names(*where).empty()) return std::nullopt;  // a leaf: an extra argument
  for (const std::string& a : args)
    if (was_left(a)) return unknown_command(*where, a);
  return std::nullopt;
}

}  // namespace onramp::cli
