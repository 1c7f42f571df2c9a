// Status and Result<T>: the error currency of Stratus.
//
// Every failure carries a StatusCode (which maps 1:1 to an HTTP status), an ARM
// error code string (e.g. "InvalidResourceName"), a human message naming the input
// that failed, and optionally the target (the field or resource at fault).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace stratus {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // 400
  kUnauthorized,        // 401
  kForbidden,           // 403
  kNotFound,            // 404
  kMethodNotAllowed,    // 405
  kConflict,            // 409
  kPreconditionFailed,  // 412
  kPayloadTooLarge,     // 413
  kInternal,            // 500
  kUnavailable,         // 503
};

// HTTP status for a code.
int HttpStatusFor(StatusCode code);
// Default ARM error code string for a StatusCode (used when none was given).
const char* DefaultArmCode(StatusCode code);

class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string arm_code, std::string message, std::string target = {})
      : code_(code), arm_code_(std::move(arm_code)), message_(std::move(message)),
        target_(std::move(target)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& arm_code() const { return arm_code_; }
  const std::string& message() const { return message_; }
  const std::string& target() const { return target_; }
  int http_status() const { return HttpStatusFor(code_); }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string arm_code_;
  std::string message_;
  std::string target_;
};

// Convenience constructors. `arm_code` defaults to the code's generic ARM name.
Status InvalidArgument(std::string message, std::string target = {},
                       std::string arm_code = "InvalidParameter");
Status NotFound(std::string message, std::string target = {},
                std::string arm_code = "ResourceNotFound");
Status Conflict(std::string message, std::string target = {}, std::string arm_code = "Conflict");
Status PreconditionFailed(std::string message);
Status Internal(std::string message);
Status Unavailable(std::string message);
// The engine behind a seam lacks an optional capability (e.g. a hypervisor without block jobs).
// InvalidArgument (HTTP 400) with ARM code "NotSupported", as ARM answers a request for a
// feature the platform does not offer; callers tell it from a bad argument by the ARM code.
inline constexpr char kNotSupported[] = "NotSupported";
Status NotSupported(std::string message, std::string target = {});

// Result<T>: either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result constructed from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace stratus

#define STRATUS_CONCAT_INNER(a, b) a##b
#define STRATUS_CONCAT(a, b) STRATUS_CONCAT_INNER(a, b)

// Return the Status if it is not OK.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::stratus::Status _st = (expr);                \
    if (!_st.ok()) return _st;                     \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Foo());`
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(STRATUS_CONCAT(_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
