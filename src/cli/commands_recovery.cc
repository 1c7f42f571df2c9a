// stratus recovery pair token|create|list|show|check|delete (site recovery: region pairing,
// docs/site-recovery.md). Replication, groups and plans come in later commands.
#include <memory>

#include "cli/commands.h"
#include "cli/resolve.h"
#include "core/base64.h"

namespace stratus::cli {
namespace {

struct PairArgs {
  std::string token;
  std::string peer;
  int expires_in_minutes = 60;
};

std::string ProviderPath(const Context& ctx) {
  return SubscriptionPath(ctx.subscription()) + "/providers/Stratus.RecoveryServices";
}
std::string PairingPath(const Context& ctx, const std::string& peer) {
  return ProviderPath(ctx) + "/regionPairings/" + peer;
}

const TableSpec& PairingTable() {
  static const TableSpec spec = {
      FieldColumn("PeerRegion", "name"),
      FieldColumn("Endpoint", "properties.peerEndpoint"),
      FieldColumn("InitiatedBy", "properties.initiatedBy"),
      FieldColumn("PairedOn", "properties.pairedOn"),
      {"PeerCertificate",
       [](const Json& row) {
         std::string fp = FormatCell(JsonPath(row, "properties.peerCertificateThumbprint"));
         return fp.size() > 16 ? fp.substr(0, 16) + "..." : fp;
       }},
  };
  return spec;
}

// The region a token names (the pairing's name), read from the token itself; "" if unreadable
// (the API then says what is wrong with it).
std::string RegionOfToken(const std::string& token) {
  if (token.rfind("SP1.", 0) != 0) return "";
  auto raw = Base64Decode(std::string_view(token).substr(4));
  if (!raw.ok()) return "";
  Json j = Json::parse(*raw, nullptr, false);
  return j.is_object() ? j.value("region", "") : "";
}

CliStatus Token(Context& ctx, const PairArgs& a) {
  Json body = {{"expiresInMinutes", a.expires_in_minutes}};
  CLI_ASSIGN_OR_RETURN(ApiResponse r,
                       ctx.client().Send("POST", ProviderPath(ctx) + "/generatePairingToken", &body));
  if (ctx.format() == OutputFormat::kJson) {
    ctx.out() << RenderJson(r.body) << "\n";
    return CliStatus::Ok();
  }
  // The token alone on stdout (for $(...)); what it is on stderr.
  ctx.err() << "Pairing token of region " << r.body.value("region", "") << " ("
            << r.body.value("peerEndpoint", "") << "), valid once until "
            << r.body.value("expiresOn", "") << ". Treat it as a password.\n";
  ctx.out() << r.body.value("token", "") << "\n";
  return CliStatus::Ok();
}

CliStatus Create(Context& ctx, const PairArgs& a) {
  std::string peer = a.peer.empty() ? RegionOfToken(a.token) : a.peer;
  if (peer.empty())
    return UsageError("--token is not a Stratus pairing token (SP1....); get one with "
                      "'stratus recovery pair token' in the peer region", "--token");
  Json body = {{"properties", {{"pairingToken", a.token}}}};
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("PUT", PairingPath(ctx, peer), &body));
  PrintOne(ctx.out(), ctx.format(), PairingTable(), r.body);
  return CliStatus::Ok();
}

CliStatus Check(Context& ctx, const PairArgs& a) {
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("POST", PairingPath(ctx, a.peer) +
                                                                    "/checkConnection"));
  static const TableSpec spec = {FieldColumn("PeerRegion", "peerRegion"),
                                 FieldColumn("Reachable", "reachable"),
                                 FieldColumn("RoundTripMs", "roundTripMs"),
                                 FieldColumn("Error", "error", true)};
  PrintOne(ctx.out(), ctx.format(), spec, r.body);
  if (!r.body.value("reachable", false))
    return CliError(ExitCode::kUnavailable, "PeerRegionUnreachable",
                    "region '" + a.peer + "' did not answer over the peer link");
  return CliStatus::Ok();
}

CliStatus Delete(Context& ctx, const PairArgs& a) {
  CLI_ASSIGN_OR_RETURN(ApiResponse r, ctx.client().Send("DELETE", PairingPath(ctx, a.peer)));
  if (r.body.is_object() && !r.body.value("peerNotified", true))
    ctx.err() << "warning: region '" << a.peer
              << "' was not reached; delete the pairing there too\n";
  return CliStatus::Ok();
}

}  // namespace

void RegisterRecoveryCommands(CLI::App& root, Action* selected) {
  CLI::App* recovery = AddNoun(root, "recovery", "Site recovery: pair regions, replicate VMs");
  CLI::App* pair = AddNoun(*recovery, "pair", "Pair this region with another (the peer link)");

  auto token_args = std::make_shared<PairArgs>();
  CLI::App* token = pair->add_subcommand(
      "token", "Make a one-time pairing token in this region, for the region that will pair");
  token->add_option("--expires-in-minutes", token_args->expires_in_minutes,
                    "Minutes the token is valid (1-1440)")
      ->capture_default_str();
  SetAction(token, selected, [token_args](Context& ctx) { return Token(ctx, *token_args); });

  auto create_args = std::make_shared<PairArgs>();
  CLI::App* create = pair->add_subcommand(
      "create", "Pair this region with the region whose token this is (both record it)");
  create->add_option("--token", create_args->token, "The token from the peer region")
      ->required();
  create->add_option("--peer", create_args->peer,
                     "The peer region's name (default: the one the token names)");
  SetAction(create, selected, [create_args](Context& ctx) { return Create(ctx, *create_args); });

  CLI::App* list = pair->add_subcommand("list", "List this region's pairings");
  SetAction(list, selected, [](Context& ctx) {
    return ctx.List(ProviderPath(ctx) + "/regionPairings", PairingTable());
  });

  auto show_args = std::make_shared<PairArgs>();
  CLI::App* show = pair->add_subcommand("show", "Show the pairing with a region");
  show->add_option("--peer", show_args->peer, "Peer region name")->required();
  SetAction(show, selected, [show_args](Context& ctx) {
    return ctx.Show(PairingPath(ctx, show_args->peer), PairingTable());
  });

  auto check_args = std::make_shared<PairArgs>();
  CLI::App* check = pair->add_subcommand("check", "Call the peer region over the peer link");
  check->add_option("--peer", check_args->peer, "Peer region name")->required();
  SetAction(check, selected, [check_args](Context& ctx) { return Check(ctx, *check_args); });

  auto delete_args = std::make_shared<PairArgs>();
  CLI::App* del = pair->add_subcommand(
      "delete", "End the pairing here (and in the peer region when it answers)");
  del->add_option("--peer", delete_args->peer, "Peer region name")->required();
  SetAction(del, selected, [delete_args](Context& ctx) { return Delete(ctx, *delete_args); });
}

}  // namespace stratus::cli
