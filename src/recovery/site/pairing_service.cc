#include "recovery/site/pairing_service.h"

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/resource_id.h"
#include "core/uuid.h"
#include "recovery/site/pairing_token.h"
#include "recovery/vault/crypto.h"

namespace stratus::recovery::site {

namespace {

constexpr char kPairingPrefix[] = "/providers/stratus.recoveryservices/regionpairings/";
constexpr char kTokenPrefix[] = "/providers/stratus.recoveryservices/pairingtokens/";
constexpr char kTokenType[] = "stratus.recoveryservices/pairingtokens";

std::string Endpoint(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return "https://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

store::WriteCondition CreateOnly() {
  store::WriteCondition c;
  c.must_not_exist = true;
  return c;
}

Status Forbidden(const std::string& code, const std::string& message) {
  return Status(StatusCode::kForbidden, code, message);
}

}  // namespace

std::string PairingService::PairingKey(const std::string& name) {
  return kPairingPrefix + ToLower(name);
}

PairingService::PairingService(api::RegionContext ctx, PeerLinkOptions options,
                               RegionIdentity identity)
    : ctx_(std::move(ctx)), options_(std::move(options)), identity_(std::move(identity)) {
  server_ = std::make_unique<PeerServer>(
      identity_, [this](const std::string& fp) { return PairedRegionOf(fp); });
  server_->Route(
      "POST", "/peer/v1/pairing",
      [this](const PeerCaller& c, const Json& body) { return AcceptPairing(c, body); },
      /*paired_only=*/false);
  server_->Route("DELETE", "/peer/v1/pairing",
                 [this](const PeerCaller& c, const Json&) { return ForgetCaller(c); });
  server_->Route("GET", "/peer/v1/hello", [this](const PeerCaller& c, const Json&) -> Result<Json> {
    return Json{{"region", ctx_.region}, {"caller", c.region},
                {"time", FormatIso8601(ctx_.clock->NowMs())}};
  });
}

PairingService::~PairingService() { Stop(); }

Result<std::unique_ptr<PairingService>> PairingService::Open(const api::RegionContext& ctx,
                                                             PeerLinkOptions options) {
  std::vector<std::string> hosts = {options.listen_host};
  if (!options.advertise_host.empty() && options.advertise_host != options.listen_host)
    hosts.push_back(options.advertise_host);
  ASSIGN_OR_RETURN(RegionIdentity id,
                   LoadOrCreateIdentity(JoinPath(ctx.data_dir, "peer"), ctx.region, hosts));
  return std::unique_ptr<PairingService>(new PairingService(ctx, std::move(options), std::move(id)));
}

Result<int> PairingService::Start() {
  // Started again (after Stop): the same port, which peers recorded.
  int port = options_.listen_port != 0 ? options_.listen_port : bound_port_;
  ASSIGN_OR_RETURN(bound_port_, server_->Start(options_.listen_host, port));
  spdlog::info("peer link: listening on {}:{} (certificate {})", options_.listen_host, bound_port_,
               identity_.fingerprint);
  return bound_port_;
}

void PairingService::Stop() {
  if (server_) server_->Stop();
}

std::string PairingService::advertised_host() const {
  return options_.advertise_host.empty() ? options_.listen_host : options_.advertise_host;
}

int PairingService::advertised_port() const {
  return options_.advertise_port ? options_.advertise_port : bound_port_;
}

Result<Json> PairingService::NewToken(int64_t ttl_minutes) {
  if (ttl_minutes < 1 || ttl_minutes > 1440)
    return InvalidArgument("'expiresInMinutes' must be 1 to 1440.", "expiresInMinutes");
  if (advertised_port() == 0)
    return Conflict("The peer link is not listening yet.", "", "PeerLinkNotListening");
  int64_t now = ctx_.clock->NowMs();
  // Forget what can no longer be used.
  auto old = ctx_.store->List(kTokenPrefix, kTokenType, "", 1000);
  if (old.ok())
    for (auto& r : old->records)
      if (r.body.value("expiresMs", int64_t{0}) < now) (void)ctx_.store->Delete(r.key);
  PairingToken t;
  t.region = ctx_.region;
  t.host = advertised_host();
  t.port = advertised_port();
  t.fingerprint = identity_.fingerprint;
  t.secret = RandomHex(32);
  t.expires_ms = now + ttl_minutes * 60000;
  store::Record rec;
  rec.key = kTokenPrefix + vault::Sha256Hex(t.secret);
  rec.type = kTokenType;
  rec.body = {{"expiresMs", t.expires_ms}, {"createdMs", now}, {"used", false}};
  RETURN_IF_ERROR(ctx_.store->Put(rec, CreateOnly()).status());
  return Json{{"token", EncodePairingToken(t)},
              {"region", t.region},
              {"peerEndpoint", Endpoint(t.host, t.port)},
              {"certificateThumbprint", t.fingerprint},
              {"expiresOn", FormatIso8601(t.expires_ms)}};
}

store::Record PairingService::NewRecord(const std::string& name, const std::string& host, int port,
                                        const std::string& fingerprint,
                                        const std::string& initiated_by,
                                        const std::string& caller) const {
  std::string now = FormatIso8601(ctx_.clock->NowMs());
  store::Record rec;
  rec.key = PairingKey(name);
  rec.type = kPairingType;
  rec.body = {{"name", name},
              {"type", "Stratus.RecoveryServices/regionPairings"},
              {"properties",
               {{"provisioningState", "Succeeded"},
                {"peerRegion", name},
                {"peerEndpoint", Endpoint(host, port)},
                {"peerCertificateThumbprint", fingerprint},
                {"localCertificateThumbprint", identity_.fingerprint},
                {"initiatedBy", initiated_by},
                {"pairedOn", now}}},
              {"systemData", {{"createdBy", caller}, {"createdAt", now}}}};
  rec.internal = {{"host", host}, {"port", port}, {"fingerprint", fingerprint}};
  return rec;
}

Result<std::pair<store::Record, bool>> PairingService::Pair(const std::string& name,
                                                            const std::string& token_text,
                                                            const std::string& caller) {
  ASSIGN_OR_RETURN(PairingToken t, DecodePairingToken(token_text));
  if (!EqualsIgnoreCase(t.region, name))
    return InvalidArgument("The token is region '" + t.region + "'s, not '" + name +
                               "'s: the pairing must be named after the region it pairs with.",
                           "name", "PairingRegionMismatch");
  if (EqualsIgnoreCase(t.region, ctx_.region) || t.fingerprint == identity_.fingerprint)
    return InvalidArgument("The token is this region's own ('" + ctx_.region +
                               "'): a region cannot pair with itself.",
                           "properties.pairingToken", "CannotPairWithSelf");
  auto existing = ctx_.store->Get(PairingKey(name));
  if (existing.ok()) {
    if (existing->internal.value("fingerprint", "") == t.fingerprint)
      return std::make_pair(*existing, false);
    return Conflict("This region is paired with '" + name + "' already, under another "
                        "certificate. Delete that pairing first.",
                    "name", "RegionAlreadyPaired");
  }
  if (t.expires_ms < ctx_.clock->NowMs())
    return InvalidArgument("The pairing token expired at " + FormatIso8601(t.expires_ms) +
                               ". Ask region '" + t.region + "' for a new one.",
                           "properties.pairingToken", "PairingTokenExpired");
  ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({PairingKey(name)}));
  if (advertised_port() == 0)
    return Conflict("The peer link is not listening yet.", "", "PeerLinkNotListening");
  PeerClient client(identity_, {t.host, t.port, t.fingerprint}, options_.call_timeout);
  Json body = {{"secret", t.secret},
               {"region", ctx_.region},
               {"endpoint", {{"host", advertised_host()}, {"port", advertised_port()}}}};
  auto reply = client.Call("POST", "/peer/v1/pairing", body.dump());
  const std::string who = "Region '" + t.region + "' (" + Endpoint(t.host, t.port) + ")";
  if (!reply.ok())
    return Status(StatusCode::kUnavailable, "PeerRegionUnreachable",
                  who + " could not be reached over the peer link: " + reply.status().message());
  if (reply->status != 200) return PeerError(who, reply->status, reply->body);
  auto answer = ParseJson(reply->body);
  if (!answer.ok() || !answer->is_object() || !EqualsIgnoreCase(answer->value("region", ""), t.region))
    return Status(StatusCode::kUnavailable, "PeerRegionUnreachable",
                  who + " answered the pairing with something else than its region name.");
  store::Record rec = NewRecord(t.region, t.host, t.port, t.fingerprint, "Local", caller);
  ASSIGN_OR_RETURN(store::Record written,
                   ctx_.store->Put(rec, CreateOnly()));
  spdlog::info("paired with region '{}' at {} (certificate {})", t.region,
               Endpoint(t.host, t.port), t.fingerprint);
  return std::make_pair(written, true);
}

Result<Json> PairingService::AcceptPairing(const PeerCaller& caller, const Json& body) {
  if (!body.is_object() || !body.contains("secret") || !body["secret"].is_string() ||
      !body.contains("region") || !body["region"].is_string() || !body.contains("endpoint") ||
      !body["endpoint"].is_object())
    return InvalidArgument("A pairing needs 'secret', 'region' and 'endpoint'.", "",
                           "InvalidRequestContent");
  std::string region = body["region"].get<std::string>();
  const Json& ep = body["endpoint"];
  std::string host = ep.value("host", "");
  int64_t port = ep.contains("port") && ep["port"].is_number_integer() ? ep["port"].get<int64_t>() : 0;
  if (!ValidRegionName(region) || host.empty() || host.size() > 253 || port < 1 || port > 65535)
    return InvalidArgument("The pairing's region name or endpoint is malformed.", "",
                           "InvalidRequestContent");
  std::string key = kTokenPrefix + vault::Sha256Hex(body["secret"].get<std::string>());
  auto token = ctx_.store->Get(key);
  if (!token.ok())
    return Forbidden("PairingTokenInvalid",
                     "The pairing token is not one region '" + ctx_.region +
                         "' made (or it was forgotten after it expired).");
  if (token->body.value("used", false))
    return Conflict("The pairing token was used already; a token pairs once. Ask region '" +
                        ctx_.region + "' for a new one.",
                    "", "PairingTokenAlreadyUsed");
  if (token->body.value("expiresMs", int64_t{0}) < ctx_.clock->NowMs())
    return Forbidden("PairingTokenExpired",
                     "The pairing token expired at " +
                         FormatIso8601(token->body.value("expiresMs", int64_t{0})) + ".");
  if (EqualsIgnoreCase(region, ctx_.region) || caller.fingerprint == identity_.fingerprint)
    return InvalidArgument("A region cannot pair with itself ('" + ctx_.region + "').", "",
                           "CannotPairWithSelf");
  auto existing = ctx_.store->Get(PairingKey(region));
  if (existing.ok() && existing->internal.value("fingerprint", "") != caller.fingerprint)
    return Conflict("Region '" + ctx_.region + "' is paired with a region named '" + region +
                        "' already, under another certificate; delete that pairing there first.",
                    "", "RegionAlreadyPaired");
  if (auto other = PairedRegionOf(caller.fingerprint); other && !EqualsIgnoreCase(*other, region))
    return Conflict("This certificate belongs to paired region '" + *other + "' already.", "",
                    "RegionAlreadyPaired");
  // One use: a conditional write, so two racing pairings cannot both take it.
  store::Record used = *token;
  used.body["used"] = true;
  used.body["usedBy"] = region;
  store::WriteCondition unchanged;
  unchanged.if_match = token->etag;
  auto marked = ctx_.store->Put(used, unchanged);
  if (!marked.ok()) {
    if (marked.status().code() == StatusCode::kPreconditionFailed)
      return Conflict("The pairing token was used already; a token pairs once.", "",
                      "PairingTokenAlreadyUsed");
    return marked.status();
  }
  store::Record rec = NewRecord(region, host, static_cast<int>(port), caller.fingerprint, "Peer",
                                "region:" + region);
  if (existing.ok()) rec.body["properties"]["pairedOn"] = existing->body["properties"]["pairedOn"];
  RETURN_IF_ERROR(ctx_.store->Put(rec).status());
  spdlog::info("region '{}' paired with this region from {} (certificate {})", region,
               Endpoint(host, static_cast<int>(port)), caller.fingerprint);
  return Json{{"region", ctx_.region}};
}

Result<Json> PairingService::ForgetCaller(const PeerCaller& caller) {
  Status s = ctx_.store->Delete(PairingKey(caller.region));
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  spdlog::info("region '{}' ended its pairing with this region", caller.region);
  return Json::object();
}

Status PairingService::Unpair(const std::string& name, bool* peer_told) {
  *peer_told = false;
  ASSIGN_OR_RETURN(store::Record rec, Get(name));
  ASSIGN_OR_RETURN(auto lock, ctx_.ops->TryLock({rec.key}));
  PeerClient client(identity_,
                    {rec.internal.value("host", ""), rec.internal.value("port", 0),
                     rec.internal.value("fingerprint", "")},
                    std::min(options_.call_timeout, std::chrono::milliseconds(5000)));
  auto reply = client.Call("DELETE", "/peer/v1/pairing");
  // PeerNotPaired: it had forgotten us already.
  *peer_told = reply.ok() && (reply->status == 200 || reply->status == 403);
  if (!*peer_told)
    spdlog::warn("unpairing '{}': the peer was not told ({}); its record stays until its "
                 "operator deletes it", name,
                 reply.ok() ? "HTTP " + std::to_string(reply->status) : reply.status().message());
  return ctx_.store->Delete(rec.key);
}

Result<store::Record> PairingService::Get(const std::string& name) const {
  auto rec = ctx_.store->Get(PairingKey(name));
  if (!rec.ok() && rec.status().code() == StatusCode::kNotFound)
    return NotFound("This region is not paired with region '" + name + "'.", name,
                    "RegionPairingNotFound");
  return rec;
}

Result<std::vector<store::Record>> PairingService::List() const {
  ASSIGN_OR_RETURN(store::Page page, ctx_.store->List(kPairingPrefix, kPairingType, "", 1000));
  return page.records;
}

std::optional<std::string> PairingService::PairedRegionOf(const std::string& fingerprint) const {
  if (fingerprint.empty()) return std::nullopt;
  auto all = List();
  if (!all.ok()) return std::nullopt;
  for (auto& r : *all)
    if (r.internal.value("fingerprint", "") == fingerprint) return r.body.value("name", "");
  return std::nullopt;
}

Result<PeerClient> PairingService::ClientFor(const std::string& name) const {
  ASSIGN_OR_RETURN(store::Record rec, Get(name));
  return PeerClient(identity_,
                    {rec.internal.value("host", ""), rec.internal.value("port", 0),
                     rec.internal.value("fingerprint", "")},
                    options_.call_timeout);
}

}  // namespace stratus::recovery::site
