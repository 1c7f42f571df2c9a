#include "api/http_types.h"

namespace stratus::api {

Json ErrorBody(const Status& st) {
  Json err = {{"code", st.arm_code().empty() ? DefaultArmCode(st.code()) : st.arm_code()},
              {"message", st.message()},
              {"details", Json::array()}};
  if (!st.target().empty()) err["target"] = st.target();
  return Json{{"error", err}};
}

ApiResponse ErrorResponse(const Status& st) {
  return ApiResponse::Json200(ErrorBody(st), st.http_status());
}

}  // namespace stratus::api
