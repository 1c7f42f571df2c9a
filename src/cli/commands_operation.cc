// stratus operation show ID_OR_URL, stratus activity-log list [--top N]
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"

namespace stratus::cli {

void RegisterOperationCommands(CLI::App& root, Action* selected) {
  CLI::App* operation = AddNoun(root, "operation", "Inspect long-running operations");
  auto id = std::make_shared<std::string>();
  CLI::App* show = operation->add_subcommand("show", "Show an operation");
  show->add_option("operation", *id, "Operation id, or the url printed by --no-wait")->required();
  SetAction(show, selected, [id](Context& ctx) {
    return ctx.Show(OperationPath(ctx.subscription(), *id), OperationTable());
  });

  CLI::App* log = AddNoun(root, "activity-log", "Read the activity log (every write)");
  auto top = std::make_shared<int>(0);
  CLI::App* list = log->add_subcommand("list", "List recent events, newest first");
  list->add_option("--top", *top, "At most N events (1..1000; default 100)")
      ->check(CLI::Range(1, 1000));
  SetAction(list, selected, [top](Context& ctx) -> CliStatus {
    std::string path =
        SubscriptionPath(ctx.subscription()) + "/providers/Stratus.Insights/activityLogs";
    if (*top > 0) path = WithQuery(path, {{"$top", std::to_string(*top)}});
    // One page: --top bounds the answer, so nextLink is not followed.
    CLI_ASSIGN_OR_RETURN(Json page, ctx.client().Get(path));
    const Json* value = JsonPath(page, "value");
    std::vector<Json> events;
    if (value != nullptr && value->is_array()) events.assign(value->begin(), value->end());
    PrintMany(ctx.out(), ctx.format(), ActivityLogTable(), events);
    return CliStatus::Ok();
  });
}

}  // namespace stratus::cli
