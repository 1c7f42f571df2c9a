// stratusd: the region daemon. Wiring lives in daemon/region.cc; this is flags and signals.
#include <signal.h>
#include <sys/stat.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "daemon/region.h"

int main(int argc, char** argv) {
  stratus::daemon::RegionConfig cfg;
  std::string listen = "127.0.0.1:8780";
  std::string log_level = "info";
  CLI::App app{"stratusd - the Stratus region daemon"};
  app.add_option("--region", cfg.region, "Region (location) name")->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir, "State, disks and tokens of this region")
      ->capture_default_str();
  app.add_option("--listen", listen, "API address host:port (port 0 = any)")->capture_default_str();
  app.add_option("--libvirt-uri", cfg.libvirt_uri, "libvirt connection")->capture_default_str();
  app.add_option("--domain-type", cfg.domain_type, "qemu (TCG) or kvm")
      ->check(CLI::IsMember({"qemu", "kvm"}))
      ->capture_default_str();
  app.add_option("--platform-images", cfg.platform_images_dir, "Folder of platform images")
      ->capture_default_str();
  app.add_option("--cli-config", cfg.cli_config_path,
                 "CLI config file to write (default ~/.stratus/config.json)");
  app.add_option("--operation-workers", cfg.operation_workers, "Threads running operations")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--import-dir", cfg.import_dirs,
                 "Host folder images may be imported from (repeatable; none by default: images "
                 "are uploaded)");
  uint64_t max_upload_gib = cfg.max_upload_bytes >> 30;
  app.add_option("--max-upload-gib", max_upload_gib, "Largest image disk one may upload, GiB")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--public-url", cfg.public_url,
                 "Base URL clients reach the API at (Location headers, nextLink); default "
                 "http(s)://<listen>");
  app.add_option("--tls-cert", cfg.tls_cert_file, "PEM certificate chain: serve HTTPS");
  app.add_option("--tls-key", cfg.tls_key_file, "PEM private key of --tls-cert");
  app.add_option("--http-workers", cfg.http_workers, "Threads handling API requests")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--max-connections", cfg.max_connections, "Open API connections at most")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-connections-per-client", cfg.max_connections_per_client,
                 "Open API connections per client address at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--http-header-timeout", cfg.http_header_timeout_s,
                 "Seconds a client has to send a request head")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  app.add_option("--http-body-timeout", cfg.http_body_timeout_s,
                 "Seconds a client has to send a body (an upload: between two reads)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--activity-retention-days", cfg.activity_retention_days,
                 "Activity log events older than this are deleted")
      ->check(CLI::Range(1, 36500))
      ->capture_default_str();
  bool fast_store = false;
  app.add_option("--public-pool", cfg.public_pool,
                 "Public addresses of the region (CIDR, /24../32), routed to --uplink-address");
  app.add_option("--uplink", cfg.uplink,
                 "Interface to the outside; moved into the region's edge namespace");
  app.add_option("--uplink-address", cfg.uplink_address, "The uplink's address (198.51.100.2/24)");
  app.add_option("--uplink-gateway", cfg.uplink_gateway, "Next hop of the uplink's default route");
  std::string peer_listen;
  app.add_option("--peer-listen", peer_listen,
                 "Peer link address host:port for paired regions (mutual TLS); default: the "
                 "API's host and port + 1 (port 0 = any)");
  app.add_option("--peer-advertise", cfg.peer_advertise_host,
                 "Host name or address paired regions reach the peer link at (default: its "
                 "listen host)");
  app.add_flag("--no-fsync-state", fast_store,
               "SQLite synchronous=NORMAL: survives a daemon crash, not a power cut");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  cfg.durable_store = !fast_store;
  cfg.max_upload_bytes = max_upload_gib << 30;
  // Nothing stratusd creates is for other users: state, tokens, disks, images, config drives
  // and vault objects are owner-only (folders QEMU must traverse are made 0711 explicitly).
  ::umask(077);
  // Paths are handed to libvirt and QEMU, which run with another working directory.
  auto absolute = [](std::string& p) {
    if (!p.empty()) p = std::filesystem::absolute(p).lexically_normal().string();
  };
  absolute(cfg.data_dir);
  absolute(cfg.platform_images_dir);
  absolute(cfg.cli_config_path);
  for (auto& d : cfg.import_dirs) absolute(d);
  spdlog::set_level(spdlog::level::from_str(log_level));

  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "stratusd: --listen must be host:port, not '%s'\n", listen.c_str());
    return 2;
  }
  cfg.listen_host = listen.substr(0, colon);
  cfg.listen_port = std::atoi(listen.c_str() + colon + 1);
  if (!peer_listen.empty()) {
    auto c = peer_listen.rfind(':');
    if (c == std::string::npos) {
      std::fprintf(stderr, "stratusd: --peer-listen must be host:port, not '%s'\n",
                   peer_listen.c_str());
      return 2;
    }
    cfg.peer_host = peer_listen.substr(0, c);
    cfg.peer_port = std::atoi(peer_listen.c_str() + c + 1);
  }

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto region = stratus::daemon::Region::Start(cfg);
  if (!region.ok()) {
    std::fprintf(stderr, "stratusd: cannot start region '%s': %s\n", cfg.region.c_str(),
                 region.status().ToString().c_str());
    return 1;
  }
  auto& r = *region;
  if (r->created_admin_token())
    spdlog::info("first start: admin token written to {} (mode 0600)", r->admin_token_path());
  else
    spdlog::info("admin token: {}", r->admin_token_path());
  // One machine-readable line for scripts and tests.
  std::printf("stratusd ready region=%s port=%d subscription=%s token=%s peer_port=%d\n",
              cfg.region.c_str(), r->port(), r->subscription().c_str(),
              r->admin_token_path().c_str(), r->peer_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("signal {}: stopping (VMs keep running)", sig);
  r->Stop();
  return 0;
}
