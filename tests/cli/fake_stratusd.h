// FakeStratusd: a tiny in-process httplib::Server on 127.0.0.1 (port 0) standing in for the
// stratusd API in CLI unit tests. Tests register handlers on server(); every request is recorded.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"

namespace stratus::cli::testing {

// The subscription, resource group and VM the CLI tests name, and what a CLI run gives back.
inline const std::string kSub = "11111111-2222-3333-4444-555555555555";
inline const std::string kRg = "/subscriptions/" + kSub + "/resourceGroups/rg1";
inline const std::string kVm = kRg + "/providers/Stratus.Compute/virtualMachines/web1";

struct CliRun {
  int exit_code;
  std::string out;
  std::string err;
};

struct RecordedRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // "a=1&b=2" as parsed params, re-joined in order received
  std::string authorization;
  std::string body;
};

class FakeStratusd {
 public:
  FakeStratusd() {
    // Recorded after routing (the body has been read) and before the response is written.
    server_.set_post_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      RecordedRequest r;
      r.method = req.method;
      r.path = req.path;
      for (const auto& [k, v] : req.params) r.query += (r.query.empty() ? "" : "&") + k + "=" + v;
      r.authorization = req.get_header_value("Authorization");
      r.body = req.body;
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(r));
    });
    server_.set_tcp_nodelay(true);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeStratusd() {
    server_.stop();
    thread_.join();
  }

  httplib::Server& server() { return server_; }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<RecordedRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Requests whose method and path match.
  std::vector<RecordedRequest> RequestsTo(const std::string& method, const std::string& path) {
    std::vector<RecordedRequest> out;
    for (auto& r : requests())
      if (r.method == method && r.path == path) out.push_back(r);
    return out;
  }

  // Helpers for handlers.
  static void Reply(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(), "application/json");
  }
  static void ReplyError(httplib::Response& res, int status, const std::string& code,
                         const std::string& message) {
    Reply(res, status, {{"error", {{"code", code}, {"message", message}, {"target", ""}}}});
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;  // guards requests_
  std::vector<RecordedRequest> requests_;
};

// A port on 127.0.0.1 with nothing listening (bound, then released).
inline int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);  // never listened: connecting is refused
  return port;
}

}  // namespace stratus::cli::testing
