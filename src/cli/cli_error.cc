#include "cli/cli_error.h"

namespace stratus::cli {
namespace {

// Code used when a response carries no ARM error document (e.g. a proxy's HTML page).
std::string FallbackCode(int http_status) {
  switch (http_status) {
    case 400: return "BadRequest";
    case 401: return "AuthenticationFailed";
    case 403: return "AuthorizationFailed";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 412: return "PreconditionFailed";
    case 413: return "RequestEntityTooLarge";
    case 503: return "ServiceUnavailable";
    default: break;
  }
  return http_status >= 500 ? "InternalServerError" : "HttpError" + std::to_string(http_status);
}

std::string StringField(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

}  // namespace

std::string CliError::ToString() const { return "ERROR: (" + code_ + ") " + message_; }

CliError UsageError(std::string message, std::string target) {
  return CliError(ExitCode::kUsage, "UsageError", std::move(message), std::move(target));
}

CliError LocalError(const Status& status) {
  return CliError(ExitCode::kLocalError, status.arm_code(), status.message(), status.target());
}

ExitCode ExitCodeForHttpStatus(int http_status) {
  if (http_status == 404) return ExitCode::kNotFound;
  if (http_status == 409) return ExitCode::kConflict;
  if (http_status >= 400 && http_status < 500) return ExitCode::kApiClientError;
  return ExitCode::kUnavailable;
}

CliError ErrorFromHttpResponse(int http_status, const std::string& body,
                               const std::string& request) {
  ExitCode exit_code = ExitCodeForHttpStatus(http_status);
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
    const Json& err = doc["error"];
    std::string code = StringField(err, "code");
    std::string message = StringField(err, "message");
    if (code.empty()) code = FallbackCode(http_status);
    if (message.empty()) message = request + " failed with HTTP " + std::to_string(http_status);
    return CliError(exit_code, std::move(code), std::move(message), StringField(err, "target"));
  }
  std::string message = request + " failed with HTTP " + std::to_string(http_status);
  if (!body.empty() && body.size() <= 200) message += ": " + body;
  return CliError(exit_code, FallbackCode(http_status), std::move(message));
}

CliError UnreachableError(const std::string& endpoint, const std::string& detail) {
  std::string message = "cannot reach stratusd at " + endpoint + ": is it running?";
  if (!detail.empty()) message += " (" + detail + ")";
  return CliError(ExitCode::kUnavailable, "ServiceUnreachable", std::move(message), endpoint);
}

CliError OperationFailedError(const Json& operation) {
  std::string status = StringField(operation, "status");
  std::string name = StringField(operation, "name");
  if (name.empty()) name = StringField(operation, "id");
  const Json* err = nullptr;
  if (operation.is_object() && operation.contains("error") && operation["error"].is_object())
    err = &operation["error"];
  std::string code = err ? StringField(*err, "code") : std::string();
  std::string message = err ? StringField(*err, "message") : std::string();
  if (code.empty()) code = status == "Canceled" ? "OperationCanceled" : "OperationFailed";
  if (message.empty()) message = "Operation '" + name + "' ended " + status + ".";
  return CliError(ExitCode::kOperationFailed, std::move(code), std::move(message),
                  err ? StringField(*err, "target") : std::string());
}

}  // namespace stratus::cli
