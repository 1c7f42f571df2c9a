#include "cli/cli_app.h"

#include <CLI/CLI.hpp>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/context.h"
#include "cli/output.h"

namespace stratus::cli {
namespace {

struct GlobalOptions {
  std::string region;
  std::string subscription;
  std::string output = "table";
  bool no_wait = false;
  bool verbose = false;
};

void AddGlobalOptions(CLI::App& app, GlobalOptions& g) {
  app.add_option("--region", g.region, "Region entry of the CLI config (default: its \"default\")");
  app.add_option("--subscription", g.subscription, "Subscription id (default: the region's)");
  app.add_option("-o,--output", g.output, "Output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_flag("--no-wait", g.no_wait, "Do not wait for long-running operations; print them");
  app.add_flag("--verbose", g.verbose, "Log requests and responses to stderr");
}

// Resolves the global options into a Context and runs `action`.
CliStatus Run(const GlobalOptions& g, const Action& action, const CliEnvironment& env,
              std::ostream& out, std::ostream& err) {
  CLI_ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(g.output));
  CLI_ASSIGN_OR_RETURN(CliConfig config, LoadCliConfig(env.config_path));
  CLI_ASSIGN_OR_RETURN(RegionConfig region, SelectRegion(config, g.region));
  CLI_ASSIGN_OR_RETURN(std::string token,
                       LoadToken(region, env.token.has_value() ? env.token->c_str() : nullptr));
  std::string subscription = g.subscription.empty() ? region.subscription : g.subscription;
  if (subscription.empty())
    return CliError(ExitCode::kLocalError, "MissingSubscription",
                    "Region '" + region.name + "' in '" + config.source_path +
                        "' has no subscription; pass --subscription.",
                    "--subscription");

  ApiClient::Options options;
  options.endpoint = region.endpoint;
  options.token = token;
  options.ca_file = region.ca_file;
  options.log = g.verbose ? &err : nullptr;
  options.progress = &err;
  options.progress_is_tty = env.stderr_is_tty;
  options.clock = env.clock;
  options.sleep = env.sleep;
  options.poll_interval_ms = env.poll_interval_ms;
  ApiClient client(std::move(options));
  Context ctx(client, subscription, region.location, format, g.no_wait, out, err);
  return action(ctx);
}

}  // namespace

int RunCli(const std::vector<std::string>& args, const CliEnvironment& env, std::ostream& out,
           std::ostream& err) {
  CLI::App app("stratus: command-line client for a Stratus cloud", "stratus");
  // Global options may follow the subcommand (`stratus vm list -g G -o json`): unmatched options
  // fall through to the parent. Subcommands inherit this setting when they are added.
  app.fallthrough();
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "ERROR: (UsageError) " + std::string(e.what()) + "\nRun with --help for usage.\n";
  });
  GlobalOptions global;
  AddGlobalOptions(app, global);

  Action selected;
  RegisterGroupCommands(app, &selected);
  RegisterVmCommands(app, &selected);
  RegisterDiskCommands(app, &selected);
  RegisterSnapshotCommands(app, &selected);
  RegisterImageCommands(app, &selected);
  RegisterNetworkCommands(app, &selected);
  RegisterBackupCommands(app, &selected);
  RegisterRecoveryCommands(app, &selected);
  RegisterOperationCommands(app, &selected);

  // CLI11 takes its arguments in reverse order.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  if (!selected) {
    err << app.help();
    return static_cast<int>(ExitCode::kUsage);
  }
  CliStatus status = Run(global, selected, env, out, err);
  out.flush();
  if (status.ok()) return static_cast<int>(ExitCode::kOk);
  err << status.error().ToString() << "\n";
  err.flush();
  return static_cast<int>(status.error().exit_code());
}

}  // namespace stratus::cli
