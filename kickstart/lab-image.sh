#!/bin/sh
# podboot lab kickstart: installs the verified stage2 disk image.
# Rendered by the pod for one server ({{mac}} in pod {{pod}}) and run by the
# stage1 agent only after the image passed verification; $PODBOOT_IMAGE is
# the verified file. Placeholders: docs/boot-chain.md.
set -eu

hostname={{hostname|sh}}
disk={{disk|sh}}

# Two ways the image comes: whole and verified ($PODBOOT_IMAGE), or as a zstd
# image streamed onto the disk chunk by chunk (empty $PODBOOT_IMAGE), each
# chunk checked against the signed manifest and shared with rack peers
# (images/stage1/stream.sh); its first MiB is held back until every chunk passed.
streamed=''
if [ -z "${PODBOOT_IMAGE:-}" ] && [ -n "${PODBOOT_IMAGE_SIZE:-}" ]; then
  streamed=1
else
  [ -n "${PODBOOT_IMAGE:-}" ] && [ -f "$PODBOOT_IMAGE" ] || { echo "kickstart: no verified image given" >&2; exit 1; }
fi
[ -b "$disk" ] || { echo "kickstart: $disk is not a block device" >&2; exit 1; }
if [ -n "$streamed" ]; then
  . "${PODBOOT_LIB:-/lib/podboot}/stream.sh"
  stream_install "$disk"
  head="$STREAM_WORK/head"
  [ "$(dd if="$head" bs=1 skip=512 count=8 2>/dev/null)" = "EFI PART" ] || { stream_wipe "$disk"; echo "kickstart: {{imageName}} {{imageVersion}} is not a GPT disk image; nothing on $disk boots" >&2; exit 1; }
else
  # Only a disk image with a GPT goes on the disk (its header at byte 512): a
  # signed file of anything else fails here, before the disk is touched.
  [ "$(dd if="$PODBOOT_IMAGE" bs=1 skip=512 count=8 2>/dev/null)" = "EFI PART" ] || { echo "kickstart: {{imageName}} {{imageVersion}} is not a GPT disk image; the disk is left as it was" >&2; exit 1; }
  echo "kickstart: writing $(wc -c < "$PODBOOT_IMAGE") bytes to $disk"
  dd if="$PODBOOT_IMAGE" of="$disk" bs=1M conv=fsync 2>/dev/null
  head=$disk
fi

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
# Streamed, they go into the held-back first MiB, which goes onto the disk last.
dd if=/tmp/podboot-firstboot of="$head" bs=512 seek=1024 conv=notrunc 2>/dev/null
[ -z "$streamed" ] || commit_disk "$disk"
sync
echo "kickstart: installed {{imageName}} {{imageVersion}} on $disk for $hostname"
