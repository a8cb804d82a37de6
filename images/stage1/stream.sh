# podboot stage1: a zstd-compressed raw disk image, streamed onto the disk.
# Sourced by a kickstart (kickstart/debian.sh) that the agent runs for an
# image whose signed manifest says "encoding": "zstd". The image is too big
# to hold in memory before checking it, so it is checked piece by piece as
# it is written, and the disk cannot boot until every piece passed:
#   1. the first and last MiB of the disk are zeroed (the old partition
#      tables and boot code: the old OS is gone from here on);
#   2. the image comes in chunks over HTTPS (a cut chunk resumes with a
#      Range request); each chunk's sha256 is checked against the manifest's
#      list (the agent verified its signature before anything touched the
#      disk) before it goes through zstd onto the disk; the first bad chunk
#      stops the stream. The image's first MiB (boot code and partition
#      table) is held back;
#   3. only after the last chunk passed, the server's seed goes into its
#      partition and, last, the held-back first MiB: a failed check leaves no
#      partition table and no boot code, so neither BIOS nor UEFI finds
#      anything to boot.
# Input (environment, exported by the agent from the verified manifest):
#   PODBOOT_SERVER PODBOOT_HTTPS PODBOOT_TOKEN PODBOOT_ROOT_CA PODBOOT_LIB
#   PODBOOT_IMAGE_SIZE PODBOOT_IMAGE_SHA256 PODBOOT_IMAGE_NAME PODBOOT_IMAGE_VERSION
#   PODBOOT_CHUNK_BYTES PODBOOT_CHUNK_SHA256 (the manifest's chunk size and digests, space-separated)
#   PODBOOT_FAIL_FILE  where a failure's reason and detail go, for the agent's report
#   PODBOOT_RETRIES, PODBOOT_FETCH_ROUNDS
# POSIX sh: busybox ash in stage1, dash on a host (tests).
PODBOOT_PREFIX=${PODBOOT_PREFIX:-podboot-stage1}
. "${PODBOOT_LIB:-/lib/podboot}/lib.sh"

STREAM_WORK=${PODBOOT_WORK:-/tmp/podboot}/stream
STREAM_BASE="https://$PODBOOT_SERVER:${PODBOOT_HTTPS:-443}"
MiB=1048576

# stream_fail REASON DETAIL: tell the agent why (it reports), print, stop the kickstart.
stream_fail() {
	share_stop
	printf '%s %s\n' "$1" "$2" >"${PODBOOT_FAIL_FILE:-/dev/null}"
	say "FAILED $1: $2"
	exit 1
}

STREAM_TLS=$(tls_first)
stream_curl() {
	# shellcheck disable=SC2086 # STREAM_TLS is a list of words, or none
	curl $STREAM_TLS -sS --fail --cacert "${PODBOOT_ROOT_CA:-/etc/podboot/root.pem}" --connect-timeout 10 --speed-limit 1024 --speed-time 60 \
		-H "Authorization: Bearer $PODBOOT_TOKEN" "$@"
}

# disk_bytes DISK: size of a block device (or a file, in tests)
disk_bytes() {
	if [ -b "$1" ]; then blockdev --getsize64 "$1"; else wc -c <"$1" | tr -d ' '; fi
}

# zero_at DISK OFFSET_MIB COUNT_MIB
zero_at() {
	dd if=/dev/zero of="$1" bs=$MiB seek="$2" count="$3" conv=notrunc 2>/dev/null
}

# Rack sharing (docs/stage1.md): the servers of one rack installing one image
# share the chunks they verified, so the WAN carries about one copy. The pod
# hands each a key for its rack's swarm and says, chunk by chunk, where to get
# it: a peer (over TLS on the rack LAN, its certificate the swarm's), wait (a
# peer is fetching it from the pod), or the pod. A peer's chunk is checked
# against the signed manifest like any other; a bad, missing or slow one is
# reported and fetched elsewhere, in the end from the pod: sharing can make an
# install faster, never wrong or stuck.
PEER_NAME=rack-peer.podboot
SHARE=off
CHUNKS=''

# share_api PATH: a POST to the pod's sharing endpoints; its one-line answer on stdout
share_api() {
	stream_curl -X POST --max-time 40 "$STREAM_BASE$1" 2>/dev/null
}

# share_start: the swarm's key from the pod, and a TLS server for the chunks this server keeps
share_start() {
	SHARE=off
	CHUNKS="$STREAM_WORK/chunks"
	mkdir -p "$CHUNKS"
	stream_curl -o "$STREAM_WORK/share" "$STREAM_BASE/v1/share/key" 2>"$STREAM_WORK/share.err" || {
		say "rack sharing: no key from the pod ($(head -n 1 "$STREAM_WORK/share.err")): every chunk from the pod"
		return 0
	}
	read -r _w SHARE_PORT SHARE_PATH SHARE_KEEP <"$STREAM_WORK/share" || _w=''
	if [ "$_w" != share ]; then
		say "rack sharing: off in this pod"
		return 0
	fi
	case "$SHARE_PORT:$SHARE_KEEP" in *[!0-9:]* | :* | *:) say "rack sharing: a malformed answer from the pod; every chunk from the pod" && return 0 ;; esac
	case "$SHARE_PATH" in '' | *[!0-9a-f]*) say "rack sharing: a malformed answer from the pod; every chunk from the pod" && return 0 ;; esac
	SHARE_PEM="$STREAM_WORK/share.pem"
	(umask 077 && sed 1d "$STREAM_WORK/share" >"$SHARE_PEM")
	rm -f "$STREAM_WORK/share"
	CHUNKS="$STREAM_WORK/www/$SHARE_PATH"
	mkdir -p "$CHUNKS"
	# -WWW: one file per request, relative to www (it refuses .. itself); the key stays outside www
	(cd "$STREAM_WORK/www" && exec openssl s_server -quiet -WWW -accept "$SHARE_PORT" -cert "$SHARE_PEM" </dev/null >/dev/null 2>"$STREAM_WORK/share-server.err") &
	SHARE_PID=$!
	SHARE=on
	say "rack sharing: serving verified chunks to rack peers on port $SHARE_PORT (up to $SHARE_KEEP at a time)"
}

share_stop() {
	[ -z "${SHARE_PID:-}" ] || kill "$SHARE_PID" 2>/dev/null || :
	SHARE_PID=''
}

# from_peers N DIGEST BYTES FILE: chunk N into FILE from a rack peer, checked; fails when the pod
# says to fetch it from the pod, or no peer's copy was good
from_peers() {
	_excl=''
	_bad=0
	_polls=0
	while [ "$_bad" -lt 3 ]; do
		_src=$(share_api "/v1/share/source?chunk=$1&exclude=$_excl$(held)") || return 1
		held_told
		case "$_src" in
		"peer "*)
			_peer=${_src#peer }
			case "$_peer" in *[!0-9.]* | '') return 1 ;; esac
			rm -f "$4"
			_why=download
			# shellcheck disable=SC2086 # STREAM_TLS is a list of words, or none
			if curl $STREAM_TLS -sS --fail --cacert "$SHARE_PEM" --resolve "$PEER_NAME:$SHARE_PORT:$_peer" --connect-timeout 5 \
				--max-time "${PODBOOT_PEER_MAX_TIME:-120}" --speed-limit 65536 --speed-time 15 \
				-o "$4" "https://$PEER_NAME:$SHARE_PORT/$SHARE_PATH/$1" 2>"$4.err" &&
				[ "$(wc -c <"$4" | tr -d ' ')" = "$3" ]; then
				[ "$(sha256sum "$4" | cut -d' ' -f1)" = "$2" ] && echo peer >>"$STREAM_WORK/sources" && return 0
				_why=digest
			fi
			say "chunk $1 from rack peer $_peer refused ($_why): asking for another source" >&2
			share_api "/v1/share/refuse?chunk=$1&peer=$_peer&why=$_why" >/dev/null || :
			_excl="${_excl:+$_excl,}$_peer"
			_bad=$((_bad + 1))
			;;
		wait)
			# the pod held the question while a peer fetched; still fetching after ~5 minutes: from the pod
			_polls=$((_polls + 1))
			[ "$_polls" -lt 20 ] || return 1
			;;
		*) return 1 ;;
		esac
	done
	return 1
}

# keep_chunk N: the verified chunk where the image is read from (and peers fetch it). Which chunks
# this server holds rides on its question for the next chunk (a call fewer per chunk: each costs a
# process and a TLS handshake); after the last one it is told on its own.
keep_chunk() {
	mv "$STREAM_WORK/part.$1" "$CHUNKS/$1"
	[ "$SHARE" = on ] || return 0
	_low=$(($1 - SHARE_KEEP + 1))
	[ "$_low" -ge 1 ] || _low=1
	echo "$_low $1" >"$STREAM_WORK/held"
	# shellcheck disable=SC2086 # one digest per word
	set -- "$1" $PODBOOT_CHUNK_SHA256
	[ "$1" -lt $(($# - 1)) ] || { share_api "/v1/share/have?from=$_low&to=$1" >/dev/null || :; }
}

# held: "&from=LOW&to=N" when the pod has not heard yet which chunks this server holds
held() {
	[ -s "$STREAM_WORK/held" ] || return 0
	read -r _hl _hn <"$STREAM_WORK/held"
	echo "&from=$_hl&to=$_hn"
}

# held_told: the pod heard; the chunk before the window goes only now, so it is never offered once gone
held_told() {
	[ -s "$STREAM_WORK/held" ] || return 0
	read -r _hl _hn <"$STREAM_WORK/held"
	: >"$STREAM_WORK/held"
	[ "$_hl" -le 1 ] || rm -f "$CHUNKS/$((_hl - 1))"
}

# fetch_chunk N DIGEST: chunk N (from 1) of the image, checked against DIGEST, from a rack peer or
# the pod. A chunk from the pod cut short is resumed from where it stopped, up to the retry rounds.
# On failure chunks.reason says download or digest, chunks.err the detail. Writes nothing on stdout
# (that is the image).
fetch_chunk() {
	_off=$((($1 - 1) * PODBOOT_CHUNK_BYTES))
	_end=$((_off + PODBOOT_CHUNK_BYTES - 1))
	[ "$_end" -lt "$PODBOOT_IMAGE_SIZE" ] || _end=$((PODBOOT_IMAGE_SIZE - 1))
	_want=$((_end - _off + 1))
	_file="$STREAM_WORK/part.$1"
	if [ "$SHARE" = on ] && from_peers "$1" "$2" "$_want" "$_file"; then
		keep_chunk "$1"
		return 0
	fi
	_part="$_file.part"
	_err="$_file.err"
	: >"$_file"
	_round=1
	_busy=0
	while :; do
		_have=$(wc -c <"$_file" | tr -d ' ')
		[ "$_have" -ge "$_want" ] && break
		if [ "$_round" -gt "${PODBOOT_FETCH_ROUNDS:-3}" ]; then
			echo download >"$STREAM_WORK/chunks.reason"
			echo "download bytes $_off-$_end: $(head -n 1 "$_err")" >"$STREAM_WORK/chunks.err"
			return 1
		fi
		# Into a file, not stdout: curl's own retry starts the range again and truncates
		# what a cut try left there; on stdout those bytes would come twice.
		rm -f "$_part"
		stream_curl --retry "${PODBOOT_RETRIES:-5}" --retry-all-errors --retry-max-time 120 \
			-r "$((_off + _have))-$_end" -o "$_part" "$STREAM_BASE/v1/stage2/image" 2>"$_err" ||
			say "fetch bytes $((_off + _have))-$_end: $(head -n 1 "$_err") (round $_round)" >&2
		[ ! -f "$_part" ] || cat "$_part" >>"$_file"
		# A pod in a boot storm answers 503 until a stream is free (spec.imageStreams): curl waited out
		# each Retry-After; waiting for a turn is not a failed round, up to ~an hour of them.
		if grep -q 'returned error: 503' "$_err" 2>/dev/null && [ "$_busy" -lt "${PODBOOT_BUSY_ROUNDS:-30}" ]; then
			_busy=$((_busy + 1))
			continue
		fi
		_round=$((_round + 1))
	done
	rm -f "$_part"
	_have=$(wc -c <"$_file" | tr -d ' ')
	if [ "$_have" != "$_want" ]; then
		echo download >"$STREAM_WORK/chunks.reason"
		echo "bytes $_off-$_end: $_have bytes came, $_want asked for" >"$STREAM_WORK/chunks.err"
		return 1
	fi
	_sum=$(sha256sum "$_file" | cut -d' ' -f1)
	if [ "$_sum" != "$2" ]; then
		echo digest >"$STREAM_WORK/chunks.reason"
		echo "image chunk $1 of $(echo "$PODBOOT_CHUNK_SHA256" | wc -w | tr -d ' ') (bytes $_off-$_end): sha256 $_sum, the manifest says ${2:-none}" >"$STREAM_WORK/chunks.err"
		return 1
	fi
	echo pod >>"$STREAM_WORK/sources"
	keep_chunk "$1"
}

# chunks: the image on stdout, a chunk at a time, each only once its sha256 is the manifest's. While one
# chunk goes through zstd onto the disk the next one is fetched and hashed in the background: the
# network and sha256 overlap decompression and the disk's writes (on two CPUs, about half the time).
chunks() {
	# shellcheck disable=SC2086 # one digest per word
	set -- $PODBOOT_CHUNK_SHA256
	_count=$#
	[ "$_count" -gt 0 ] || return 0
	fetch_chunk 1 "$1" || return 1
	_n=1
	while :; do
		_next=''
		if [ "$_n" -lt "$_count" ]; then
			eval "_digest=\${$((_n + 1))}"
			fetch_chunk $((_n + 1)) "$_digest" >/dev/null &
			_next=$!
		fi
		cat "$CHUNKS/$_n"
		# a chunk nobody else will ask for goes at once (sharing keeps a window of them: keep_chunk)
		[ "$SHARE" = on ] || rm -f "$CHUNKS/$_n"
		# stdout is the image: what is said goes to stderr (the console)
		_done=$((_n * PODBOOT_CHUNK_BYTES))
		[ $((_done % (64 * MiB))) -ne 0 ] || say "streamed $((_done / MiB)) of $((PODBOOT_IMAGE_SIZE / MiB)) MiB" >&2
		[ -n "$_next" ] || break
		wait "$_next" || return 1
		_n=$((_n + 1))
	done
}

# to_disk DISK: the decompressed image from stdin; its first MiB to a file, the rest onto the disk from 1 MiB on.
# A failed write still drains stdin, so the stream's own failure (a bad chunk) is the one told.
to_disk() {
	if dd bs=$MiB count=1 iflag=fullblock of="$STREAM_WORK/head" 2>/dev/null &&
		dd bs=$MiB seek=1 iflag=fullblock of="$1" conv=notrunc 2>"$STREAM_WORK/dd.err"; then
		echo 0 >"$STREAM_WORK/dd.rc"
	else
		echo 1 >"$STREAM_WORK/dd.rc"
		cat >/dev/null
	fi
}

# stream_install DISK: steps 1-3 above
stream_install() {
	_disk=$1
	for v in PODBOOT_IMAGE_SIZE PODBOOT_IMAGE_SHA256 PODBOOT_CHUNK_BYTES PODBOOT_CHUNK_SHA256 PODBOOT_TOKEN PODBOOT_SERVER; do
		eval "_v=\${$v:-}"
		[ -n "$_v" ] || stream_fail install "$v is not set (run by the stage1 agent only)"
	done
	[ -b "$_disk" ] || [ -f "$_disk" ] || stream_fail install "$_disk is not a disk"
	rm -rf "$STREAM_WORK"
	mkdir -p "$STREAM_WORK"
	: >"$STREAM_WORK/sources"
	share_start
	_bytes=$(disk_bytes "$_disk")
	_mib=$((_bytes / MiB))
	[ "$_mib" -gt 2 ] || stream_fail install "$_disk is too small ($_bytes bytes)"
	say "wipe the boot areas of $_disk ($_mib MiB): from here on the old OS is gone"
	zero_at "$_disk" 0 1
	zero_at "$_disk" $((_mib - 1)) 1
	sync
	say "stream $PODBOOT_IMAGE_NAME $PODBOOT_IMAGE_VERSION ($((PODBOOT_IMAGE_SIZE / MiB)) MiB zstd) onto $_disk"
	echo 1 >"$STREAM_WORK/chunks.rc"
	echo 1 >"$STREAM_WORK/zstd.rc"
	echo 1 >"$STREAM_WORK/dd.rc"
	# zstd's status is taken with ||: under the kickstart's set -e a bare failing zstd would end this
	# subshell undrained, and chunks with it, before it could say why.
	{
		chunks
		echo $? >"$STREAM_WORK/chunks.rc"
	} | {
		_zrc=0
		zstd -dc 2>"$STREAM_WORK/zstd.err" || _zrc=$?
		echo $_zrc >"$STREAM_WORK/zstd.rc"
		cat >/dev/null
	} | to_disk "$_disk"
	sync
	# From dd's "N+M records out" (of MiB blocks, fullblock: M is the last, short one), rounded up to
	# the MiB: busybox dd prints no byte count, and the wipe must still find the image's end.
	_mibs=$(awk '/records out/ { split($1, r, "+"); n = r[1] + r[2] } END { print n + 0 }' "$STREAM_WORK/dd.err" 2>/dev/null) || _mibs=0
	_written=$((_mibs * MiB))
	if [ "$(cat "$STREAM_WORK/chunks.rc")" != 0 ]; then
		stream_wipe "$_disk" "$_written"
		if [ "$(cat "$STREAM_WORK/chunks.reason" 2>/dev/null)" = digest ]; then
			stream_fail digest "$(cat "$STREAM_WORK/chunks.err"): nothing on $_disk can boot"
		fi
		stream_fail download "$(cat "$STREAM_WORK/chunks.err" 2>/dev/null)"
	fi
	if [ "$(cat "$STREAM_WORK/zstd.rc")" != 0 ] || [ "$(cat "$STREAM_WORK/dd.rc")" != 0 ] || [ ! -s "$STREAM_WORK/head" ]; then
		stream_wipe "$_disk" "$_written"
		stream_fail install "writing $_disk: $(head -n 1 "$STREAM_WORK/zstd.err") $(tail -n 1 "$STREAM_WORK/dd.err")"
	fi
	# every chunk matched the signed list, which covers every byte: the image is the one the manifest names
	say "verified $PODBOOT_IMAGE_NAME $PODBOOT_IMAGE_VERSION sha256=$PODBOOT_IMAGE_SHA256 ($(echo "$PODBOOT_CHUNK_SHA256" | wc -w | tr -d ' ') chunks, $((_written / MiB + 1)) MiB written while streaming)"
	say "chunks from rack peers: $(grep -c peer "$STREAM_WORK/sources"), from the pod: $(grep -c pod "$STREAM_WORK/sources")"
}

# stream_wipe DISK WRITTEN: a failed stream leaves no boot code and no partition table, the backup one at the image's end included
stream_wipe() {
	zero_at "$1" 0 1
	if [ -n "${2:-}" ]; then
		_last=$((($2 + MiB - 1) / MiB))
		[ "$_last" -lt 1 ] || zero_at "$1" "$_last" 1
	fi
	sync
}

# gpt_entry HEADFILE N: "FIRST LAST" LBAs of partition N in the held-back table (entries at LBA 2, 128 bytes each)
gpt_entry() {
	_at=$((1024 + ($2 - 1) * 128))
	_first=$(od -A n -t u8 -j $((_at + 32)) -N 8 "$1" | tr -d ' ')
	_lastlba=$(od -A n -t u8 -j $((_at + 40)) -N 8 "$1" | tr -d ' ')
	echo "$_first $_lastlba"
}

# write_seed DISK PARTITION: GET /v1/seed (this server's cloud-init NoCloud volume) into that partition
write_seed() {
	[ "$(dd if="$STREAM_WORK/head" bs=1 skip=512 count=8 2>/dev/null)" = "EFI PART" ] || stream_fail install "the image has no GPT: nowhere to put the seed"
	set -- "$1" $(gpt_entry "$STREAM_WORK/head" "$2")
	[ -n "${2:-}" ] && [ "${2:-0}" -gt 0 ] || stream_fail install "the image has no seed partition"
	rm -f "$STREAM_WORK/seed"
	stream_curl --retry "${PODBOOT_RETRIES:-5}" --retry-all-errors --retry-max-time 60 -o "$STREAM_WORK/seed" "$STREAM_BASE/v1/seed" 2>"$STREAM_WORK/curl.err" ||
		stream_fail download "seed: $(head -n 1 "$STREAM_WORK/curl.err")"
	_seed=$(wc -c <"$STREAM_WORK/seed" | tr -d ' ')
	_room=$((($3 - $2 + 1) * 512))
	[ "$_seed" -le "$_room" ] || stream_fail install "seed is $_seed bytes, its partition $_room"
	dd if="$STREAM_WORK/seed" of="$1" bs=512 seek="$2" conv=notrunc 2>/dev/null || stream_fail install "writing the seed to $1"
	say "seed written: $_seed bytes at sector $2"
}

# commit_disk DISK: the held-back first MiB, last; from now on the disk boots
commit_disk() {
	sync
	dd if="$STREAM_WORK/head" of="$1" bs=$MiB count=1 conv=notrunc 2>/dev/null || stream_fail install "writing the partition table to $1"
	sync
	# the table is on the disk already: a kernel that cannot re-read it now reads it at the next boot
	[ ! -b "$1" ] || blockdev --rereadpt "$1" 2>/dev/null || :
	say "partition table written: $1 is bootable"
}
