#!/usr/bin/env bash
# Runs the vault benchmark: builds vault_bench, makes (once) the cached 8 GiB ext4 image, then
# compares Stratus with restic and borg on it. Needs ~40 GB free in /var/tmp; removes its work
# directory afterwards and keeps the cached image (/var/tmp/stratus-bench-cache).
#
# Usage: bench/vault/run.sh [vault_bench options, e.g. --threads 3 --no-peers]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CACHE=${CACHE:-/var/tmp/stratus-bench-cache}

for tool in qemu-img qemu-nbd qemu-io mke2fs restic borg; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
avail_kb=$(df -Pk /var/tmp | awk 'NR==2 {print $4}')
if (( avail_kb < 40 * 1024 * 1024 )); then
  echo "run.sh: /var/tmp has $((avail_kb / 1024 / 1024)) GB free; the benchmark needs ~40 GB" >&2
  exit 1
fi
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"

cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
ninja -C "$BUILD" vault_bench >/dev/null
IMAGE=$("$ROOT/bench/vault/make_image.sh" "$CACHE" | tail -n1)
GUEST=${STRATUS_GUEST_DIR:-$BUILD/guest}  # the tiny guest (make guest) for the running-VM backup
exec "$BUILD/bench/vault/vault_bench" --image "$IMAGE" --work /var/tmp/stratus-bench-vault \
  --guest "$GUEST" "$@"
