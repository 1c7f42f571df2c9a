#!/usr/bin/env bash
# Builds (once) the benchmark disk: an 8 GiB qcow2 holding an ext4 file system filled with ~4.5 GB
# of real files copied from /usr/lib, /usr/share, ... Made with `mke2fs -d` (no mount, no loop
# device). Cached in $CACHE (default /var/tmp/stratus-bench-cache) and reused across runs.
#
# Usage: bench/vault/make_image.sh [cache-dir]    prints the image path on the last line
set -euo pipefail

CACHE=${1:-/var/tmp/stratus-bench-cache}
IMAGE=$CACHE/ext4-8g.qcow2
TARGET_BYTES=${TARGET_BYTES:-4500000000}
SIZE=8G

if [[ -f $IMAGE ]]; then
  echo "$IMAGE"
  exit 0
fi

for tool in mke2fs qemu-img; do
  command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
mkdir -p "$CACHE"
STAGE=$CACHE/staging
RAW=$CACHE/ext4-8g.raw.partial
rm -rf "$STAGE" "$RAW"
mkdir -p "$STAGE"

# Copy whole top-level directories of the sources until the budget is reached; the last one is
# copied file by file so the total lands close to TARGET_BYTES.
total=0
copy_dir() {  # $1 = source dir
  local src=$1 sz
  sz=$(du -sb --apparent-size "$src" 2>/dev/null | cut -f1)
  if (( total + sz <= TARGET_BYTES )); then
    mkdir -p "$STAGE$(dirname "$src")"
    cp -a "$src" "$STAGE$(dirname "$src")/" 2>/dev/null || true
    total=$((total + sz))
    return
  fi
  # Too big as a whole: descend.
  local entry
  for entry in "$src"/*; do
    (( total >= TARGET_BYTES )) && return
    if [[ -d $entry && ! -L $entry ]]; then
      copy_dir "$entry"
    elif [[ -f $entry && ! -L $entry ]]; then
      mkdir -p "$STAGE$src"
      cp -a "$entry" "$STAGE$src/" 2>/dev/null || continue
      total=$((total + $(stat -c %s "$entry")))
    fi
  done
}
for src in /usr/lib /usr/share /usr/libexec /usr/include /usr/local /opt; do
  (( total >= TARGET_BYTES )) && break
  [[ -d $src ]] && copy_dir "$src"
done
echo "staged $(du -sh --apparent-size "$STAGE" | cut -f1) of files" >&2

truncate -s $SIZE "$RAW"
mke2fs -q -t ext4 -F -L stratus-bench -d "$STAGE" "$RAW"
qemu-img convert -q -f raw -O qcow2 "$RAW" "$IMAGE.partial"
mv "$IMAGE.partial" "$IMAGE"
rm -rf "$STAGE" "$RAW"
qemu-img info "$IMAGE" | grep -E "virtual size|disk size" >&2
echo "$IMAGE"
