// RawConnection: a TCP client for requests no HTTP library sends (slow heads, conflicting
// framing, endless chunked bodies), shared by the API unit tests and the e2e tests.
#pragma once

#include <chrono>
#include <string>

namespace stratus::test {

// A raw TCP connection to 127.0.0.1:port, for requests no HTTP library sends (slow heads,
// conflicting framing, endless chunked bodies). Closed on destruction.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return fd_ >= 0; }
  // Sends all of `bytes` within `timeout`; false when the peer closed, reset or stopped reading.
  bool Send(const std::string& bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // What arrives until the peer closes or `timeout` passes.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout);
  // One HTTP response (head, then Content-Length bytes of body) within `timeout`; "" if none.
  std::string ReadResponse(std::chrono::milliseconds timeout);
  // True if the peer closes (EOF or reset) within `timeout`.
  bool PeerCloses(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string buffered_;
};

}  // namespace stratus::test
