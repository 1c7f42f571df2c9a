#include "cli/commands.h"

namespace stratus::cli {

CLI::App* AddNoun(CLI::App& parent, const std::string& name, const std::string& description) {
  CLI::App* noun = parent.add_subcommand(name, description);
  noun->require_subcommand(1);
  return noun;
}

void SetAction(CLI::App* command, Action* selected, Action action) {
  command->callback([selected, action = std::move(action)] { *selected = action; });
}

CliResult<Json> ParseTags(const std::vector<std::string>& tags) {
  Json out = Json::object();
  for (const std::string& tag : tags) {
    size_t eq = tag.find('=');
    std::string key = tag.substr(0, eq);
    std::string value = eq == std::string::npos ? std::string() : tag.substr(eq + 1);
    if (key.empty())
      return UsageError("--tags: '" + tag + "' has no key (use key=value).", "--tags");
    out[key] = value;
  }
  return out;
}

std::string LocationOr(const Context& ctx, const std::string& location) {
  return location.empty() ? ctx.location() : location;
}

}  // namespace stratus::cli
