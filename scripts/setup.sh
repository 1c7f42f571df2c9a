#!/usr/bin/env bash
# Installs every Debian package Stratus needs to build, test, run and benchmark. Idempotent:
# packages already present are not touched, and apt-get runs only when something is missing.
# docs/dependencies.md says why each package is here.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  # libraries
  libvirt-dev libnbd-dev libsqlite3-dev libssl-dev libzstd-dev nlohmann-json3-dev
  libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev libboost-dev
  libnftables-dev
  # tests and benchmarks (clang + its runtime: the libFuzzer target with ASan/UBSan)
  libgtest-dev libgmock-dev libbenchmark-dev googletest curl python3 clang-14 libclang-rt-14-dev
  # engines
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils libnbd-bin e2fsprogs
  nftables iproute2 dnsmasq-base dnsmasq-utils
  # tiny guest image
  busybox-static qemu-guest-agent cpio gzip xz-utils zstd
  # peers for bench/
  restic borgbackup iptables iperf3 rsync
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

# libvirtd (and virtlogd) must answer on qemu:///system.
"$(dirname "$0")/ensure-libvirtd.sh"
