#include "recovery/service/vault_actions.h"

#include "api/resource_util.h"

namespace stratus::recovery::service {

using api::ApiRequest;
using api::ApiResponse;
using api::OperationContext;

Result<ApiResponse> VaultActions::Post(const ApiRequest& req, const ResourceId& id,
                                       const std::string& action) {
  const Json& b = req.body.is_object() ? req.body : Json::object();
  if (EqualsIgnoreCase(action, "unlock")) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(b, {"passphrase"}, ""));
    ASSIGN_OR_RETURN(std::string pass, api::GetString(b, "passphrase"));
    ASSIGN_OR_RETURN(store::Record rec, ctx_.store->Get(id.Key()));
    if (rec.body["properties"]["encryption"].value("keySource", "") != "Customer")
      return InvalidArgument("Vault '" + id.name() + "' uses the platform key; nothing to unlock.");
    RETURN_IF_ERROR(vaults_->Unlock(id, rec, pass));
    return ApiResponse::Json200({{"state", "Unlocked"}});
  }
  if (EqualsIgnoreCase(action, "verify") || EqualsIgnoreCase(action, "gc")) {
    bool verify = EqualsIgnoreCase(action, "verify");
    RETURN_IF_ERROR(api::RejectUnknownKeys(
        b, verify ? std::vector<std::string>{"recoveryPointId"} : std::vector<std::string>{}, ""));
    std::string point;
    if (verify && b.contains("recoveryPointId")) {
      ASSIGN_OR_RETURN(point, api::GetString(b, "recoveryPointId"));
      if (point.find('/') != std::string::npos) point = point.substr(point.rfind('/') + 1);
      RETURN_IF_ERROR(vault::ValidatePointId(point));
    }
    ASSIGN_OR_RETURN(vault::Vault * v, vaults_->Open(id));
    ASSIGN_OR_RETURN(
        std::string op,
        ctx_.ops->Start(
            id, "Stratus.RecoveryServices/vaults/" + ToLower(action) + "/action", Json::object(),
            [v, verify, point](OperationContext& octx) -> Status {
              if (!verify) {
                vault::GcOptions go;
                go.progress = [&](uint64_t d, uint64_t t) {
                  octx.SetProgress(t ? static_cast<int>(d * 100 / t) : 0, "deleting");
                };
                ASSIGN_OR_RETURN(vault::GcStats s, v->Gc(go));
                octx.result() = {{"points", s.points},
                                 {"chunksListed", s.chunks_listed},
                                 {"chunksReferenced", s.chunks_referenced},
                                 {"chunksProtected", s.chunks_protected},
                                 {"chunksDeleted", s.chunks_deleted},
                                 {"bytesFreed", s.bytes_freed},
                                 {"durationMs", s.duration_ms}};
                return Status::Ok();
              }
              vault::VerifyOptions vo;
              vo.progress = [&](uint64_t d, uint64_t t) { (void)d, (void)t; };
              ASSIGN_OR_RETURN(vault::VerifyReport r,
                               point.empty() ? v->VerifyAll(vo) : v->Verify(point, vo));
              Json problems = Json::array();
              for (auto& p : r.problems)
                problems.push_back(
                    {{"kind", p.kind == vault::ChunkProblem::Kind::kMissing   ? "Missing"
                              : p.kind == vault::ChunkProblem::Kind::kCorrupt ? "Corrupt"
                                                                              : "Manifest"},
                     {"recoveryPointId", p.point_id},
                     {"disk", p.disk},
                     {"offset", p.offset},
                     {"chunkId", p.chunk_id},
                     {"message", p.message}});
              octx.result() = {{"recoveryPoints", r.points},
                               {"disks", r.disks},
                               {"chunksChecked", r.chunks_checked},
                               {"bytesChecked", r.bytes_checked},
                               {"problems", problems}};
              if (!r.ok()) return Status(StatusCode::kInternal, "VaultCorrupt", r.Summary());
              return Status::Ok();
            },
            {}, req.caller));
    return api::AcceptedResponse(req, id.subscription(), op);
  }
  if (EqualsIgnoreCase(action, "copy")) {
    RETURN_IF_ERROR(api::RejectUnknownKeys(b, {}, ""));
    ASSIGN_OR_RETURN(std::string op, redundancy_->RequestCopy(id, req.caller, "manual"));
    if (op.empty())
      return Conflict("Vault '" + id.name() +
                          "' has redundancy Local: there is no copy to bring "
                          "up to date.",
                      "properties.redundancy", "CopyNotConfigured");
    return api::AcceptedResponse(req, id.subscription(), op);
  }
  return NotFound("Vaults have no action '" + action + "'.", action, "NotFound");
}

}  // namespace stratus::recovery::service
