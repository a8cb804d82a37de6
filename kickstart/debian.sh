#!/bin/sh
# podboot Debian kickstart: puts the podboot Debian image (podboot images
# build-debian) on this server's disk. Rendered by the pod for one server
# ({{mac}} in pod {{pod}}) and run by the stage1 agent once the image's signed
# manifest is verified. The image streams onto the disk and is checked while
# it does (images/stage1/stream.sh); then this server's cloud-init seed (its
# hostname, users, SSH keys, management network and node agent settings)
# goes into the image's seed partition, and the partition table comes last.
# Placeholders: docs/boot-chain.md.
set -eu

disk={{disk|sh}}
hostname={{hostname|sh}}

. "${PODBOOT_LIB:-/lib/podboot}/stream.sh"

stream_install "$disk"
write_seed "$disk" 2
commit_disk "$disk"
echo "kickstart: installed {{imageName}} {{imageVersion}} on $disk for $hostname"
