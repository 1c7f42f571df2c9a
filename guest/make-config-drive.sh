#!/bin/bash
# Build a Stratus config drive (see guest/README.md, "Config drive").
#
#   guest/make-config-drive.sh OUT.img HOSTNAME [NETWORK_FILE] [USER_SCRIPT]
#
# OUT.img is a raw ext4 image (4 MiB, no partition table, label "stratus-config", no journal)
# holding the plain files hostname, network and user-script. Attach it to the VM as a virtio disk
# with serial "stratus-config" (libvirt: <serial>stratus-config</serial>; QEMU:
# -device virtio-blk-pci,drive=...,serial=stratus-config). Read-only attachment is fine.
# Made with mke2fs -d: no root, no loop device. Stratus' daemon does the same thing in C++.
set -euo pipefail
[ $# -ge 2 ] && [ $# -le 4 ] || { echo "usage: $0 OUT.img HOSTNAME [NETWORK_FILE] [USER_SCRIPT]" >&2; exit 2; }
out=$1 name=$2 net=${3:-} script=${4:-}
# RFC 1123 host name label(s)
[[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]] &&
  [ ${#name} -le 253 ] || { echo "$0: invalid hostname '$name'" >&2; exit 2; }
[ -z "$net" ] || [ -f "$net" ] || { echo "$0: no such network file: $net" >&2; exit 2; }
[ -z "$script" ] || [ -f "$script" ] || { echo "$0: no such user script: $script" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 0755 "$dir"
printf '%s\n' "$name" > "$dir/hostname"
[ -z "$net" ] || install -m 0644 "$net" "$dir/network"
[ -z "$script" ] || install -m 0755 "$script" "$dir/user-script"

tmp="$out.tmp.$$"
rm -f "$tmp"
mke2fs -q -F -t ext4 -O ^has_journal -L stratus-config -E root_owner=0:0 -d "$dir" "$tmp" 4M >/dev/null
mv -f "$tmp" "$out"
