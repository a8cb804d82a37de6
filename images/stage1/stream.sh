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

# fetch_chunk N DIGEST: chunk N (from 1) of the image into its slot file, checked against DIGEST. A chunk
# cut short is resumed from where it stopped, up to the retry rounds. On failure chunks.reason says
# download or digest, chunks.err the detail. Writes nothing on stdout (that is the image).
fetch_chunk() {
	_off=$((($1 - 1) * PODBOOT_CHUNK_BYTES))
	_end=$((_off + PODBOOT_CHUNK_BYTES - 1))
	[ "$_end" -lt "$PODBOOT_IMAGE_SIZE" ] || _end=$((PODBOOT_IMAGE_SIZE - 1))
	_want=$((_end - _off + 1))
	_file=$(chunk_file "$1")
	_part="$_file.part"
	_err="$_file.err"
	: >"$_file"
	_round=1
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
}

# chunk_file N: two slots, so chunk N+1 can come while chunk N goes to zstd
chunk_file() {
	echo "$STREAM_WORK/chunk.$(($1 % 2))"
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
		cat "$(chunk_file "$_n")"
		# stdout is the image: what is said goes to stderr (the console)
		_done=$((_n * PODBOOT_CHUNK_BYTES))
		[ $((_done % (64 * MiB))) -ne 0 ] || say "streamed $((_done / MiB)) of $((PODBOOT_IMAGE_SIZE / MiB)) MiB" >&2
		[ -n "$_next" ] || break
		wait "$_next" || return 1
		_n=$((_n + 1))
	done
	rm -f "$STREAM_WORK"/chunk.*
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
