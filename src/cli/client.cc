#include "cli/client.h"

#include <fstream>

#include <httplib.h>

#include <cctype>
#include <chrono>
#include <thread>

namespace stratus::cli {
namespace {

bool HasQueryParam(const std::string& path, const std::string& name) {
  size_t q = path.find('?');
  if (q == std::string::npos) return false;
  size_t pos = q + 1;
  while (pos < path.size()) {
    size_t end = path.find('&', pos);
    if (end == std::string::npos) end = path.size();
    std::string param = path.substr(pos, end - pos);
    if (param == name || param.rfind(name + "=", 0) == 0) return true;
    pos = end + 1;
  }
  return false;
}

std::string JsonString(const Json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// The percentage of an operation as text ("40"), or "" when it reports none.
std::string Percent(const Json& operation) {
  if (!operation.is_object()) return {};
  auto it = operation.find("percentComplete");
  if (it == operation.end() || !it->is_number()) return {};
  return std::to_string(static_cast<int>(it->get<double>()));
}

// `body` for the --verbose log: the values of secret fields (a vault's customer passphrase) are
// replaced, so that the log never shows them.
Json RedactForLog(const Json& body) {
  if (body.is_array()) {
    Json out = Json::array();
    for (const Json& item : body) out.push_back(RedactForLog(item));
    return out;
  }
  if (!body.is_object()) return body;
  Json out = Json::object();
  for (const auto& [key, value] : body.items())
    out[key] = key == "passphrase" ? Json("<redacted>") : RedactForLog(value);
  return out;
}

}  // namespace

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

std::string WithQuery(const std::string& path, const QueryParams& params) {
  std::string out = path;
  for (const auto& [name, value] : params) {
    out += out.find('?') == std::string::npos ? '?' : '&';
    // `$` is kept readable: ARM parameter names ($top, $expand) are sent literally.
    out += name + "=" + UrlEncode(value);
  }
  return out;
}

std::string PathOfUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos || url[0] == '/') return url;
  size_t slash = url.find('/', scheme + 3);
  return slash == std::string::npos ? "/" : url.substr(slash);
}

void ProgressReporter::Update(const Json& operation, int64_t elapsed_ms) {
  if (out_ == nullptr) return;
  std::string what = JsonString(operation, "operation");
  if (what.empty()) what = JsonString(operation, "name");
  std::string percent = Percent(operation);
  std::string line = " - Running ..  " + what;
  if (!percent.empty()) line += " " + percent + "%";
  line += " " + std::to_string(elapsed_ms / 1000) + "s";
  if (tty_) {
    *out_ << "\r" << line << "\x1b[K" << std::flush;
    line_open_ = true;
    return;
  }
  std::string key = what + "|" + JsonString(operation, "status") + "|" + percent;
  if (key == last_key_) return;
  last_key_ = key;
  *out_ << line << "\n" << std::flush;
}

void ProgressReporter::Finish() {
  if (out_ == nullptr || !line_open_) return;
  *out_ << "\r\x1b[K" << std::flush;
  line_open_ = false;
}

ApiClient::ApiClient(Options options) : options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = SystemClock::Default();
  if (!options_.sleep)
    options_.sleep = [](int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  http_ = std::make_unique<httplib::Client>(options_.endpoint);
  http_->set_connection_timeout(options_.connect_timeout_s, 0);
  http_->set_read_timeout(options_.read_timeout_s, 0);
  http_->set_write_timeout(options_.read_timeout_s, 0);
  http_->set_keep_alive(true);
  http_->set_tcp_nodelay(true);
  http_->set_url_encode(false);  // paths are built encoded (WithQuery)
  if (!options_.ca_file.empty()) http_->set_ca_cert_path(options_.ca_file.c_str());
}

ApiClient::~ApiClient() = default;

CliResult<ApiResponse> ApiClient::Send(const std::string& method, const std::string& path,
                                       const Json* body) {
  httplib::Request req;
  req.method = method;
  req.path = PathOfUrl(path);
  if (!HasQueryParam(req.path, "api-version"))
    req.path = WithQuery(req.path, {{"api-version", kApiVersion}});
  req.headers.emplace("Authorization", "Bearer " + options_.token);
  req.headers.emplace("Accept", "application/json");
  if (body != nullptr) {
    req.body = body->dump(-1, ' ', false, Json::error_handler_t::replace);
    req.headers.emplace("Content-Type", "application/json");
  }
  const std::string request_line = method + " " + req.path;
  if (options_.log != nullptr) {
    *options_.log << "> " << request_line << "\n";
    if (body != nullptr)
      *options_.log << "> "
                    << RedactForLog(*body).dump(-1, ' ', false, Json::error_handler_t::replace)
                    << "\n";
  }
  if (!http_->is_valid())
    return UnreachableError(options_.endpoint, "the endpoint is not a valid http(s) URL");

  int64_t start_ms = options_.clock->MonotonicMs();
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  if (!http_->send(req, res, error))
    return UnreachableError(options_.endpoint, httplib::to_string(error));
  if (options_.log != nullptr) {
    *options_.log << "< " << res.status << " (" << options_.clock->MonotonicMs() - start_ms
                  << " ms)\n";
    if (!res.body.empty()) *options_.log << "< " << res.body << "\n";
  }
  if (res.status < 200 || res.status >= 300)
    return ErrorFromHttpResponse(res.status, res.body, request_line);

  ApiResponse out;
  out.status = res.status;
  if (!res.body.empty()) {
    out.body = Json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    if (out.body.is_discarded())
      return CliError(ExitCode::kUnavailable, "InvalidResponse",
                      request_line + " returned a body that is not JSON (HTTP " +
                          std::to_string(res.status) + ").");
  }
  out.async_operation = res.get_header_value("Azure-AsyncOperation");
  return out;
}

CliResult<ApiResponse> ApiClient::Upload(const std::string& path, const std::string& file) {
  auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
  if (!*in) return UsageError("cannot read '" + file + "'");
  in->seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in->tellg());
  in->seekg(0);
  std::string full = PathOfUrl(path);
  if (!HasQueryParam(full, "api-version")) full = WithQuery(full, {{"api-version", kApiVersion}});
  const std::string request_line = "PUT " + full;
  if (options_.log != nullptr) *options_.log << "> " << request_line << " (" << size << " bytes of " << file << ")\n";
  httplib::Headers headers = {{"Authorization", "Bearer " + options_.token},
                              {"Accept", "application/json"}};
  auto provider = [in](size_t offset, size_t length, httplib::DataSink& sink) {
    std::vector<char> buf(std::min<size_t>(length, 1 << 20));
    in->seekg(static_cast<std::streamoff>(offset));
    in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize got = in->gcount();
    if (got <= 0) return false;
    sink.write(buf.data(), static_cast<size_t>(got));
    return true;
  };
  auto res = http_->Put(full, headers, size, provider, "application/octet-stream");
  if (!res) return UnreachableError(options_.endpoint, httplib::to_string(res.error()));
  if (options_.log != nullptr) *options_.log << "< " << res->status << "\n";
  if (res->status < 200 || res->status >= 300)
    return ErrorFromHttpResponse(res->status, res->body, request_line);
  ApiResponse out;
  out.status = res->status;
  if (!res->body.empty()) out.body = Json::parse(res->body, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  out.async_operation = res->get_header_value("Azure-AsyncOperation");
  return out;
}

CliResult<Json> ApiClient::Get(const std::string& path) {
  CLI_ASSIGN_OR_RETURN(ApiResponse response, Send("GET", path));
  return std::move(response.body);
}

CliResult<std::vector<Json>> ApiClient::ListAll(const std::string& path) {
  std::vector<Json> items;
  std::string next = path;
  // A page limit guards against a server that keeps returning the same nextLink.
  for (int page = 0; !next.empty() && page < 10000; ++page) {
    CLI_ASSIGN_OR_RETURN(Json body, Get(next));
    if (!body.is_object() || !body.contains("value") || !body["value"].is_array())
      return CliError(ExitCode::kUnavailable, "InvalidResponse",
                      "GET " + PathOfUrl(next) + " did not return a {\"value\":[...]} list.");
    for (auto& item : body["value"]) items.push_back(std::move(item));
    std::string link = JsonString(body, "nextLink");
    next = link == next ? std::string() : link;
  }
  return items;
}

CliResult<Json> ApiClient::WaitForOperation(const std::string& operation_url) {
  CLI_ASSIGN_OR_RETURN(Json operation, WaitForOperationEnd(operation_url));
  if (JsonString(operation, "status") == "Succeeded") return operation;
  return OperationFailedError(operation);
}

CliResult<Json> ApiClient::WaitForOperationEnd(const std::string& operation_url) {
  ProgressReporter progress(options_.progress, options_.progress_is_tty);
  const int64_t start_ms = options_.clock->MonotonicMs();
  while (true) {
    auto polled = Get(operation_url);
    if (!polled.ok()) {
      progress.Finish();
      return polled.error();
    }
    Json operation = std::move(polled).value();
    std::string status = JsonString(operation, "status");
    progress.Update(operation, options_.clock->MonotonicMs() - start_ms);
    if (status == "Succeeded") {
      progress.Finish();
      return operation;
    }
    if (status == "Failed" || status == "Canceled") {
      progress.Finish();
      return operation;
    }
    // "Queued": a backup job waiting behind another one on the same item.
    if (status != "InProgress" && status != "NotStarted" && status != "Running" &&
        status != "Accepted" && status != "Queued") {
      progress.Finish();
      return CliError(
          ExitCode::kUnavailable, "InvalidResponse",
          "Operation " + PathOfUrl(operation_url) + " reports unknown status '" + status + "'.");
    }
    options_.sleep(options_.poll_interval_ms);
  }
}

}  // namespace stratus::cli
