#include "core/status.h"

namespace stratus {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthorized: return 401;
    case StatusCode::kForbidden: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kMethodNotAllowed: return 405;
    case StatusCode::kConflict: return 409;
    case StatusCode::kPreconditionFailed: return 412;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kInternal: return 500;
    case StatusCode::kUnavailable: return 503;
  }
  return 500;
}

const char* DefaultArmCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "Ok";
    case StatusCode::kInvalidArgument: return "InvalidParameter";
    case StatusCode::kUnauthorized: return "AuthenticationFailed";
    case StatusCode::kForbidden: return "AuthorizationFailed";
    case StatusCode::kNotFound: return "ResourceNotFound";
    case StatusCode::kMethodNotAllowed: return "MethodNotAllowed";
    case StatusCode::kConflict: return "Conflict";
    case StatusCode::kPreconditionFailed: return "PreconditionFailed";
    case StatusCode::kPayloadTooLarge: return "RequestEntityTooLarge";
    case StatusCode::kInternal: return "InternalServerError";
    case StatusCode::kUnavailable: return "ServiceUnavailable";
  }
  return "InternalServerError";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = arm_code_ + ": " + message_;
  if (!target_.empty()) s += " (target: " + target_ + ")";
  return s;
}

Status InvalidArgument(std::string message, std::string target, std::string arm_code) {
  return Status(StatusCode::kInvalidArgument, std::move(arm_code), std::move(message),
                std::move(target));
}
Status NotFound(std::string message, std::string target, std::string arm_code) {
  return Status(StatusCode::kNotFound, std::move(arm_code), std::move(message), std::move(target));
}
Status Conflict(std::string message, std::string target, std::string arm_code) {
  return Status(StatusCode::kConflict, std::move(arm_code), std::move(message), std::move(target));
}
Status PreconditionFailed(std::string message) {
  return Status(StatusCode::kPreconditionFailed, "PreconditionFailed", std::move(message));
}
Status Internal(std::string message) {
  return Status(StatusCode::kInternal, "InternalServerError", std::move(message));
}
Status Unavailable(std::string message) {
  return Status(StatusCode::kUnavailable, "ServiceUnavailable", std::move(message));
}
Status NotSupported(std::string message, std::string target) {
  return Status(StatusCode::kInvalidArgument, kNotSupported, std::move(message), std::move(target));
}

}  // namespace stratus
