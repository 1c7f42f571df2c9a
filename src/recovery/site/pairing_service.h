// PairingService: a region's pairings with other regions (site recovery, docs/site-recovery.md
// "Pairing"), and the peer link both ends use afterwards.
//
// Pairing B with A:
//  1. A makes a one-time token (NewToken): its peer endpoint, its certificate's fingerprint and
//     a random secret; A stores only the secret's SHA-256, the expiry and whether it was used.
//  2. B is given the token (PUT regionPairings/{A} with it) and calls A's peer listener with its
//     own certificate, pinning A's fingerprint from the token, sending the secret, its region
//     name and its own peer endpoint.
//  3. A checks the secret (known, not used, not expired), marks it used (a conditional write:
//     two racing uses cannot both win), and records B with the fingerprint of the certificate B
//     presented in that handshake. B records A when A answers.
// From then on each side accepts the other's certificate only (PeerServer), and calls it through
// ClientFor (PeerClient pinning the recorded fingerprint). Nothing is shared but the token.
//
// Pairings are the region's, not a subscription's: records are keyed
// /providers/stratus.recoveryservices/regionpairings/{name} and shown under any subscription.
// Thread-safety: all methods are thread-safe (the store serialises; one pairing change per
// peer at a time through the operation locks).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/provider.h"
#include "core/json.h"
#include "core/status.h"
#include "recovery/site/peer_client.h"
#include "recovery/site/peer_server.h"
#include "recovery/site/region_identity.h"
#include "store/store.h"

namespace stratus::recovery::site {

struct PeerLinkOptions {
  std::string listen_host = "127.0.0.1";
  int listen_port = 0;          // 0 = any free port
  std::string advertise_host;   // what tokens tell peers; "" = listen_host
  int advertise_port = 0;       // 0 = the bound port
  std::chrono::milliseconds call_timeout{10000};  // connect, handshake and each I/O of a call
};

class PairingService {
 public:
  // Loads or makes the region's identity in <ctx.data_dir>/peer. Nothing listens yet.
  static Result<std::unique_ptr<PairingService>> Open(const api::RegionContext& ctx,
                                                      PeerLinkOptions options);
  ~PairingService();

  // Starts the peer listener (with the pairing routes and whatever else was routed on
  // server()); returns its port.
  Result<int> Start();
  void Stop();

  const RegionIdentity& identity() const { return identity_; }
  const std::string& region() const { return ctx_.region; }
  // Where peers reach this region ("" host before Start()).
  std::string advertised_host() const;
  int advertised_port() const;
  // For other services to add their peer routes (before Start()).
  PeerServer& server() { return *server_; }

  // A new one-time token valid for `ttl_minutes`: {token, region, peerEndpoint,
  // certificateThumbprint, expiresOn}. Expired tokens are forgotten on the way.
  Result<Json> NewToken(int64_t ttl_minutes);

  // B's side: pairs with the region the token names, which must be `name` (case-insensitive).
  // Returns the pairing record, and whether it was created (false: the same pairing existed, so
  // nothing was called). Errors: InvalidPairingToken / PairingRegionMismatch /
  // CannotPairWithSelf / PairingTokenExpired (400), RegionAlreadyPaired (409, with another
  // certificate), PeerRegionUnreachable (503), and the peer's own refusals relayed
  // (PairingTokenInvalid, PairingTokenAlreadyUsed, ...). Nothing is recorded on failure.
  Result<std::pair<store::Record, bool>> Pair(const std::string& name, const std::string& token,
                                              const std::string& caller);

  // Forgets the pairing with `name` here, and tells the peer to forget it too when it answers
  // (best effort: a peer that is gone keeps its record until its operator deletes it). NotFound
  // if there is none. `peer_told` says whether the peer confirmed.
  Status Unpair(const std::string& name, bool* peer_told);

  Result<store::Record> Get(const std::string& name) const;
  Result<std::vector<store::Record>> List() const;
  // The paired region whose certificate has this fingerprint.
  std::optional<std::string> PairedRegionOf(const std::string& fingerprint) const;
  // A client for calls to paired region `name` (NotFound if not paired).
  Result<PeerClient> ClientFor(const std::string& name) const;

  // Store keys.
  static std::string PairingKey(const std::string& name);
  static constexpr const char* kPairingType = "stratus.recoveryservices/regionpairings";

 private:
  PairingService(api::RegionContext ctx, PeerLinkOptions options, RegionIdentity identity);
  Result<Json> AcceptPairing(const PeerCaller& caller, const Json& body);
  Result<Json> ForgetCaller(const PeerCaller& caller);
  store::Record NewRecord(const std::string& name, const std::string& host, int port,
                          const std::string& fingerprint, const std::string& initiated_by,
                          const std::string& caller) const;

  api::RegionContext ctx_;
  PeerLinkOptions options_;
  RegionIdentity identity_;
  std::unique_ptr<PeerServer> server_;
  int bound_port_ = 0;
};

}  // namespace stratus::recovery::site
