#include "recovery/site/site_recovery_provider.h"

#include <chrono>

#include "api/json_shape.h"
#include "api/resource_util.h"
#include "recovery/site/pairing_token.h"

namespace stratus::recovery::site {

using api::ApiRequest;
using api::ApiResponse;
using api::Shape;

namespace {

Status NoPeerLink() {
  return Conflict("This region has no peer link (stratusd --peer-listen).", "",
                  "PeerLinkNotConfigured");
}

Status CheckName(const std::string& name) {
  if (!ValidRegionName(name))
    return InvalidArgument("'" + name.substr(0, 80) + "' is not a region name: 1-64 of letters, "
                           "digits, '.', '_' and '-', starting with a letter or digit.",
                           "name", "InvalidResourceName");
  return Status::Ok();
}

const Shape& PairingShape() {
  static const Shape s = Shape::Object(
      {{"properties", Shape::Object({{"pairingToken", Shape::String()}})}});
  return s;
}

const Shape& PatchShape() {
  static const Shape s = Shape::Object(
      {{"properties", Shape::Object({{"replicationBandwidthMbps", Shape::Integer()}})}});
  return s;
}

const Shape& TokenShape() {
  static const Shape s = Shape::Object({{"expiresInMinutes", Shape::Integer()}});
  return s;
}

}  // namespace

Json SiteRecoveryProvider::Shown(const store::Record& rec, const std::string& sub) const {
  Json j = api::ToArm(rec);
  j["id"] = "/subscriptions/" + sub + "/providers/Stratus.RecoveryServices/regionPairings/" +
            rec.body.value("name", "");
  return j;
}

Result<ApiResponse> SiteRecoveryProvider::SubscriptionGet(const ApiRequest& req,
                                                          const std::string& sub,
                                                          const std::vector<std::string>& rest) {
  if (!EqualsIgnoreCase(rest[0], "regionPairings") || rest.size() > 2)
    return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                  "The method 'GET' is not allowed on '" + req.path + "'.");
  if (!pairing_) {
    if (rest.size() == 1) return ApiResponse::Json200({{"value", Json::array()}});
    return NotFound("This region is not paired with region '" + rest[1] + "'.", rest[1],
                    "RegionPairingNotFound");
  }
  if (rest.size() == 1) {
    ASSIGN_OR_RETURN(auto all, pairing_->List());
    Json value = Json::array();
    for (auto& r : all) value.push_back(Shown(r, sub));
    return ApiResponse::Json200({{"value", value}});
  }
  RETURN_IF_ERROR(CheckName(rest[1]));
  ASSIGN_OR_RETURN(store::Record rec, pairing_->Get(rest[1]));
  ApiResponse r = ApiResponse::Json200(Shown(rec, sub));
  r.headers["ETag"] = rec.etag;
  return r;
}

Result<ApiResponse> SiteRecoveryProvider::SubscriptionWrite(const ApiRequest& req,
                                                            const std::string& sub,
                                                            const std::vector<std::string>& rest) {
  auto not_allowed = [&] {
    return Status(StatusCode::kMethodNotAllowed, "MethodNotAllowed",
                  "The method '" + req.method + "' is not allowed on '" + req.path + "'.");
  };
  if (EqualsIgnoreCase(rest[0], "generatePairingToken")) {
    if (rest.size() != 1 || req.method != "POST") return not_allowed();
    Json body = req.body.is_null() ? Json::object() : req.body;
    if (!body.is_object())
      return InvalidArgument("The body must be a JSON object.", "", "InvalidRequestContent");
    RETURN_IF_ERROR(api::CheckShape(body, TokenShape()));
    RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"expiresInMinutes"}, ""));
    ASSIGN_OR_RETURN(int64_t ttl, api::GetInt(body, "expiresInMinutes", 1, 1440, 60));
    if (!pairing_) return NoPeerLink();
    ASSIGN_OR_RETURN(Json token, pairing_->NewToken(ttl));
    ApiResponse r = ApiResponse::Json200(token);
    r.headers["Cache-Control"] = "no-store";
    return r;
  }
  // regionPairings
  if (rest.size() == 3 && req.method == "POST" && EqualsIgnoreCase(rest[2], "checkConnection")) {
    RETURN_IF_ERROR(CheckName(rest[1]));
    if (!pairing_) return NoPeerLink();
    ASSIGN_OR_RETURN(PeerClient client, pairing_->ClientFor(rest[1]));
    auto start = std::chrono::steady_clock::now();
    auto reply = client.Call("GET", "/peer/v1/hello");
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count();
    Json out = {{"peerRegion", rest[1]}, {"roundTripMs", static_cast<int64_t>(ms * 10) / 10.0}};
    if (!reply.ok()) {
      out["reachable"] = false;
      out["error"] = reply.status().message();
    } else if (reply->status != 200) {
      out["reachable"] = false;
      out["error"] = PeerError("the peer", reply->status, reply->body).message();
    } else {
      out["reachable"] = true;
    }
    return ApiResponse::Json200(out);
  }
  if (rest.size() != 2) return not_allowed();
  RETURN_IF_ERROR(CheckName(rest[1]));
  if (req.method == "PUT") {
    RETURN_IF_ERROR(api::RequireObjectBody(req));
    Json body = req.body;
    RETURN_IF_ERROR(api::CheckShape(body, PairingShape()));
    RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"properties", "name", "id", "type"}, ""));
    const Json* props = JsonPath(body, "properties");
    if (!props || !props->is_object() || !props->contains("pairingToken"))
      return InvalidArgument("'properties.pairingToken' is required: a token from the peer "
                             "region (stratus recovery pair token, run there).",
                             "properties.pairingToken", "MissingPairingToken");
    RETURN_IF_ERROR(api::RejectUnknownKeys(*props, {"pairingToken"}, "properties"));
    if (!pairing_) return NoPeerLink();
    ASSIGN_OR_RETURN(auto done,
                     pairing_->Pair(rest[1], (*props)["pairingToken"].get<std::string>(),
                                    req.caller));
    ApiResponse r = ApiResponse::Json200(Shown(done.first, sub), done.second ? 201 : 200);
    r.headers["ETag"] = done.first.etag;
    return r;
  }
  if (req.method == "PATCH") {
    // This region's own settings of the pairing: what it sends to the peer is capped at
    // replicationBandwidthMbps (0: no cap). The peer's record is its own.
    RETURN_IF_ERROR(api::RequireObjectBody(req));
    Json body = req.body;
    RETURN_IF_ERROR(api::CheckShape(body, PatchShape()));
    RETURN_IF_ERROR(api::RejectUnknownKeys(body, {"properties"}, ""));
    Json props = body.value("properties", Json::object());
    RETURN_IF_ERROR(api::RejectUnknownKeys(props, {"replicationBandwidthMbps"}, "properties"));
    if (!pairing_) return NoPeerLink();
    ASSIGN_OR_RETURN(store::Record rec, pairing_->Get(rest[1]));
    if (props.contains("replicationBandwidthMbps")) {
      ASSIGN_OR_RETURN(int64_t mbps, api::GetInt(props, "replicationBandwidthMbps", 0, 100000, 0));
      rec.body["properties"]["replicationBandwidthMbps"] = mbps;
      store::WriteCondition c = api::ConditionFromHeaders(req);
      if (!c.if_match) c.if_match = rec.etag;
      ASSIGN_OR_RETURN(rec, ctx_.store->Put(rec, c));
    }
    ApiResponse r = ApiResponse::Json200(Shown(rec, sub));
    r.headers["ETag"] = rec.etag;
    return r;
  }
  if (req.method == "DELETE") {
    if (!pairing_) return ApiResponse::Json200(nullptr, 204);
    bool told = false;
    Status s = pairing_->Unpair(rest[1], &told);
    if (s.code() == StatusCode::kNotFound) return ApiResponse::Json200(nullptr, 204);
    RETURN_IF_ERROR(s);
    // Whether the peer confirmed it forgot us too (a gone peer keeps its record).
    return ApiResponse::Json200({{"peerNotified", told}});
  }
  return not_allowed();
}

Result<ApiResponse> SiteRecoveryProvider::Put(const ApiRequest& req, const ResourceId& id) {
  return NotFound("No resource group resources here.", id.ToString());
}

Result<ApiResponse> SiteRecoveryProvider::Delete(const ApiRequest& req, const ResourceId& id) {
  return NotFound("No resource group resources here.", id.ToString());
}

}  // namespace stratus::recovery::site
