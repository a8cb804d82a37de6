#!/bin/sh
# podboot lab kickstart: installs the verified stage2 disk image.
# Rendered by the pod for one server ({{mac}} in pod {{pod}}) and run by the
# stage1 agent only after the image passed verification; $PODBOOT_IMAGE is
# the verified file. Placeholders: docs/boot-chain.md.
set -eu

hostname={{hostname|sh}}
disk={{disk|sh}}

[ -n "${PODBOOT_IMAGE:-}" ] && [ -f "$PODBOOT_IMAGE" ] || { echo "kickstart: no verified image given" >&2; exit 1; }
[ -b "$disk" ] || { echo "kickstart: $disk is not a block device" >&2; exit 1; }
# Only a disk image with a GPT goes on the disk (its header at byte 512): a
# signed file of anything else fails here, before the disk is touched.
[ "$(dd if="$PODBOOT_IMAGE" bs=1 skip=512 count=8 2>/dev/null)" = "EFI PART" ] || { echo "kickstart: {{imageName}} {{imageVersion}} is not a GPT disk image; the disk is left as it was" >&2; exit 1; }

echo "kickstart: writing $(wc -c < "$PODBOOT_IMAGE") bytes to $disk"
dd if="$PODBOOT_IMAGE" of="$disk" bs=1M conv=fsync 2>/dev/null

# First-boot settings for the installed OS, in the unused sectors between the
# MBR and the first partition (sector 1024, 4 KiB at most): where to report
# in, with a token bound to this server that only reports (scope "node"),
# as plain assignments up to "#end" (images/stage2/init sources only those).
{
  echo "PODBOOT_SERVER={{server}}"
  echo "PODBOOT_HTTPS={{httpsPort}}"
  echo "PODBOOT_POD={{pod}}"
  echo "PODBOOT_MAC={{mac}}"
  echo "PODBOOT_HOSTNAME=$hostname"
  echo "PODBOOT_NODE_TOKEN={{nodeToken}}"
  echo "PODBOOT_HEARTBEAT={{heartbeatSeconds}}"
  # Booted from virtual media, where no DHCP answers: the static address stage1 took from the ISO's block.
  [ -z "${PODBOOT_NET_ADDRESS:-}" ] || printf 'PODBOOT_NET_ADDRESS=%s\nPODBOOT_NET_PREFIX=%s\nPODBOOT_NET_GATEWAY=%s\nPODBOOT_NET_DNS=%s\n' \
    "$PODBOOT_NET_ADDRESS" "${PODBOOT_NET_PREFIX:-24}" "${PODBOOT_NET_GATEWAY:-}" "${PODBOOT_NET_DNS:-}"
  echo "#end"
  # After #end: the root CA the installed OS checks the pod's certificate with.
  printf '%s\n' {{rootCa|sh}}
} > /tmp/podboot-firstboot
[ "$(wc -c < /tmp/podboot-firstboot)" -le 4096 ] || { echo "kickstart: first-boot settings over 4 KiB" >&2; exit 1; }
dd if=/tmp/podboot-firstboot of="$disk" bs=512 seek=1024 conv=notrunc,fsync 2>/dev/null
sync
echo "kickstart: installed {{imageName}} {{imageVersion}} on $disk for $hostname"
