#!/bin/sh
# podboot stage1 agent: fetch the pod's signed stage2 image over HTTPS, verify
# it, run the kickstart, report every step. Runs under busybox sh in stage1
# and under any POSIX sh on a host (tests): it touches no disk itself; only
# the kickstart does, and only after every check passed.
#
# Input (environment; init sets it from the kernel command line):
#   PODBOOT_SERVER PODBOOT_HTTPS PODBOOT_POD PODBOOT_MAC PODBOOT_TOKEN
#   (PODBOOT_TOKEN is the install token from the kernel command line: good for
#   one exchange only, POST /v1/session; the session it buys replaces it)
#   PODBOOT_ROOT_CA  root CA file (default /etc/podboot/root.pem)
#   PODBOOT_WORK     work directory (default /tmp/podboot)
#   PODBOOT_LIB      directory of lib.sh and verify.sh (default /lib/podboot)
#   PODBOOT_RETRIES  curl --retry per request (default 5); PODBOOT_FETCH_ROUNDS
#                    rounds of those per download (default 3): tests lower them
# Exit status: 0 installed, 1 failed (reported; the caller stops).
PODBOOT_PREFIX=${PODBOOT_PREFIX:-podboot-stage1}
LIB=${PODBOOT_LIB:-/lib/podboot}
. "$LIB/lib.sh"
PODBOOT_VERIFY_LIB=1
. "$LIB/verify.sh"

CA=${PODBOOT_ROOT_CA:-/etc/podboot/root.pem}
WORK=${PODBOOT_WORK:-/tmp/podboot}
BASE="https://$PODBOOT_SERVER:${PODBOOT_HTTPS:-443}"
mkdir -p "$WORK"

# Values from the command line end up in URLs and headers: refuse anything odd.
safe() { echo "$1" | grep -Eq '^[A-Za-z0-9._:~+/=-]+$'; }

# curl to the pod: the root CA only (never -k), the server's session, retries
# on any error with backoff, bounded. A transfer slower than 1 KiB/s for 60 s
# is abandoned (and resumed by the next retry) instead of hanging forever.
TLS_FIRST=$(tls_first)
api() {
	# shellcheck disable=SC2086 # TLS_FIRST is a list of words, or none
	curl $TLS_FIRST -sS --fail --cacert "$CA" --retry "${PODBOOT_RETRIES:-5}" --retry-all-errors --retry-max-time 120 \
		--connect-timeout 10 --speed-limit 1024 --speed-time 60 -H "Authorization: Bearer $PODBOOT_TOKEN" "$@"
}

# json_text TEXT: safe inside a JSON string (no quotes, backslashes, control characters), at most 300 characters
json_text() {
	# printable ASCII only, with sed: busybox tr has no [:print:] class (it takes the letters literally)
	printf '%s' "$1" | tr -d '"\\' | tr '\n\r\t' '   ' | LC_ALL=C sed 's/[^ -~]//g' | cut -c1-300
}

# report STATE [REASON DETAIL]: POST /v1/events; a failed report is printed, not fatal.
report() {
	if [ -n "${2:-}" ]; then
		post_event "$1" "{\"state\":\"$1\",\"reason\":\"$2\",\"detail\":\"$(json_text "$3")\"}"
	else
		post_event "$1" "{\"state\":\"$1\"}"
	fi
}

# report_installed: the disk holds the image of the verified manifest; the pod records which, by its sha256
report_installed() {
	post_event installed "{\"state\":\"installed\",\"sha256\":\"$(json_text "$MANIFEST_SHA256")\"}"
}

post_event() {
	api -X POST -H 'Content-Type: application/json' --data "$2" -o /dev/null "$BASE/v1/events" 2>"$WORK/report.err" ||
		say "warning: could not report $1: $(head -n 1 "$WORK/report.err")"
}

# fail REASON DETAIL: report, print, then wait for the pod's word: exit 3
# (init reboots into a new network boot) when a rollout or an operator wants
# this server installed again, else stay stopped here.
fail() {
	report failed "$1" "$2"
	say "FAILED $1: $2"
	await_retry
	exit 1
}

# A heartbeat every PODBOOT_RETRY_POLL seconds (10) with this install's
# session, refreshed while it lasts; the pod's answer says "reboot" when the
# server is wanted back. PODBOOT_RETRY_WAIT seconds (a day) at most, then the
# machine just stays stopped.
await_retry() {
	_polls=$((${PODBOOT_RETRY_WAIT:-86400} / ${PODBOOT_RETRY_POLL:-10}))
	[ "$_polls" -gt 0 ] && say "stopped; $(disk_left). Waiting for the pod to ask for a new install; power-cycle to retry."
	while [ "$_polls" -gt 0 ]; do
		sleep "${PODBOOT_RETRY_POLL:-10}"
		_polls=$((_polls - 1))
		# shellcheck disable=SC2086 # TLS_FIRST is a list of words, or none
		if curl $TLS_FIRST -sS --fail --cacert "$CA" --connect-timeout 10 --max-time 30 -H "Authorization: Bearer $PODBOOT_TOKEN" \
			-H 'Content-Type: application/json' --data '{"state":"heartbeat"}' -o "$WORK/answer" "$BASE/v1/events" 2>/dev/null; then
			if grep -q '"action": *"reboot"' "$WORK/answer"; then
				say "the pod asks for a new install: rebooting"
				exit 3
			fi
		else
			refresh_token
		fi
	done
}

# fetch PATH FILE: resumable download (-C -), three rounds of curl's own retries
fetch() {
	_round=1
	while [ $_round -le "${PODBOOT_FETCH_ROUNDS:-3}" ]; do
		if api -C - -o "$2" "$BASE$1" 2>"$WORK/fetch.err"; then return 0; fi
		say "fetch $1: $(head -n 1 "$WORK/fetch.err") (round $_round)"
		_round=$((_round + 1))
	done
	return 1
}

# exchange: POST /v1/session with the install token → the session, over TLS.
# The pod accepts the install token once; a retry from the same address
# within a short window gets the same session back, so a cut connection is
# retried here (curl says 000), while a refusal (4xx) is final: retrying a
# used token would only raise more "install token replayed" events.
exchange() {
	_try=1
	# PODBOOT_RETRIES counts retries, as curl's --retry does: the first try is not one of them
	while [ $_try -le $((${PODBOOT_RETRIES:-5} + 1)) ]; do
		rm -f "$WORK/session"
		_code=$(curl $TLS_FIRST -sS --cacert "$CA" --connect-timeout 10 --max-time 60 -X POST \
			-H "Authorization: Bearer $PODBOOT_TOKEN" -o "$WORK/session" -w '%{http_code}' \
			"$BASE/v1/session" 2>"$WORK/session.err")
		case "$_code" in
		200)
			_session=$(head -n 1 "$WORK/session")
			if [ -n "$_session" ] && safe "$_session"; then
				PODBOOT_TOKEN=$_session
				export PODBOOT_TOKEN
				return 0
			fi
			SESSION_ERROR="answer is not a session credential"
			return 1
			;;
		4??)
			SESSION_ERROR="HTTP $_code: $(json_text "$(head -c 200 "$WORK/session")")"
			return 1
			;;
		esac
		SESSION_ERROR="HTTP ${_code:-000}: $(head -n 1 "$WORK/session.err")"
		say "session exchange: $SESSION_ERROR (try $_try)"
		sleep "$_try"
		_try=$((_try + 1))
	done
	return 1
}

# POST /v1/token/refresh before a long step; keep the old session if it fails
refresh_token() {
	if _new=$(api -X POST "$BASE/v1/token/refresh" 2>/dev/null) && [ -n "$_new" ] && safe "$_new"; then
		PODBOOT_TOKEN=$_new
		export PODBOOT_TOKEN
	fi
}

for v in PODBOOT_SERVER PODBOOT_POD PODBOOT_TOKEN; do
	eval "_val=\${$v:-}"
	if [ -z "$_val" ] || ! safe "$_val"; then
		say "FAILED manifest: $v missing or not a plain value on the kernel command line"
		exit 1
	fi
done
[ -s "$CA" ] || { say "FAILED signature: no root CA at $CA"; exit 1; }

say "exchange install token for a session at $BASE"
# Nothing can be reported without a session: print and stop.
exchange || { say "FAILED session: $SESSION_ERROR"; exit 1; }

say "report stage1 to $BASE"
report stage1

say "fetch manifest"
rm -f "$WORK/manifest.json" "$WORK/manifest.json.p7s" "$WORK/image.p7s"
fetch /v1/stage2/manifest.json "$WORK/manifest.json" || fail download "manifest.json: $(head -n 1 "$WORK/fetch.err")"
fetch /v1/stage2/manifest.json.p7s "$WORK/manifest.json.p7s" || fail download "manifest.json.p7s: $(head -n 1 "$WORK/fetch.err")"
say "verify manifest"
verify_manifest "$WORK" "$CA" "$PODBOOT_POD" || fail "$VERIFY_REASON" "$VERIFY_DETAIL"
say "manifest ok: $MANIFEST_NAME $MANIFEST_VERSION, $MANIFEST_SIZE bytes"

# The kickstart runs with the agent's environment; its output goes to the
# console and to a log, its exit status through a file (a pipe loses it).
run_kickstart() {
	PODBOOT_MANIFEST="$WORK/manifest.json"
	PODBOOT_ROOT_CA=$CA
	PODBOOT_LIB=$LIB
	PODBOOT_WORK=$WORK
	PODBOOT_FAIL_FILE="$WORK/kickstart.fail"
	export PODBOOT_IMAGE PODBOOT_MANIFEST PODBOOT_SERVER PODBOOT_HTTP PODBOOT_HTTPS PODBOOT_POD PODBOOT_MAC PODBOOT_TOKEN PODBOOT_ROOT_CA PODBOOT_LIB PODBOOT_WORK PODBOOT_FAIL_FILE
	rm -f "$PODBOOT_FAIL_FILE"
	echo 1 >"$WORK/kickstart.rc"
	{ (cd "$WORK" && sh "$WORK/kickstart.sh"); echo $? >"$WORK/kickstart.rc"; } 2>&1 | tee "$WORK/kickstart.log"
	[ "$(cat "$WORK/kickstart.rc")" = 0 ] && return 0
	# A streamed install names its own failed check (digest, download); anything else is the kickstart's.
	if [ -s "$PODBOOT_FAIL_FILE" ]; then
		read -r _reason _detail <"$PODBOOT_FAIL_FILE"
		case "$_reason" in digest | download | install) fail "$_reason" "$_detail" ;; esac
	fi
	fail install "kickstart exited $(cat "$WORK/kickstart.rc"): $(tail -n 1 "$WORK/kickstart.log")"
}

fetch_kickstart() {
	say "fetch kickstart"
	rm -f "$WORK/kickstart.sh"
	fetch /v1/kickstart "$WORK/kickstart.sh" || fail kickstart "$(head -n 1 "$WORK/fetch.err")"
	[ -s "$WORK/kickstart.sh" ] || fail kickstart "empty kickstart"
}

if [ "$MANIFEST_ENCODING" = zstd ]; then
	# A disk image too big to hold first: the kickstart streams it onto the
	# disk through stream.sh, which checks every chunk's sha256 against this
	# verified manifest before writing it and the partition table only after
	# the last one.
	fetch_kickstart
	refresh_token
	say "installing (streamed: nothing on the disk boots until the image is verified)"
	report installing
	PODBOOT_IMAGE=''
	PODBOOT_IMAGE_SIZE=$MANIFEST_SIZE
	PODBOOT_IMAGE_SHA256=$MANIFEST_SHA256
	PODBOOT_IMAGE_NAME=$MANIFEST_NAME
	PODBOOT_IMAGE_VERSION=$MANIFEST_VERSION
	PODBOOT_CHUNK_BYTES=$MANIFEST_CHUNK_BYTES
	PODBOOT_CHUNK_SHA256=$MANIFEST_CHUNK_SHA256
	export PODBOOT_IMAGE_SIZE PODBOOT_IMAGE_SHA256 PODBOOT_IMAGE_NAME PODBOOT_IMAGE_VERSION PODBOOT_CHUNK_BYTES PODBOOT_CHUNK_SHA256
	run_kickstart
	report_installed
	say "installed"
	exit 0
fi

refresh_token
say "fetch image"
fetch /v1/stage2/image.p7s "$WORK/image.p7s" || fail download "image.p7s: $(head -n 1 "$WORK/fetch.err")"
fetch /v1/stage2/image "$WORK/image" || fail download "image: $(head -n 1 "$WORK/fetch.err")"
report stage2-fetched

say "verify image"
verify_image "$WORK" "$CA" || fail "$VERIFY_REASON" "$VERIFY_DETAIL"
report verified
say "verified $MANIFEST_NAME $MANIFEST_VERSION sha256=$MANIFEST_SHA256"

fetch_kickstart

refresh_token
say "installing"
report installing
PODBOOT_IMAGE="$WORK/image"
run_kickstart
report_installed
say "installed"
exit 0
