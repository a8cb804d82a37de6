#!/usr/bin/env bash
# Captures real DHCP messages from ISC dhclient, ISC dhcrelay (with and without
# option 82), QEMU's iPXE NIC ROM (BIOS and UEFI), perfdhcp and the Kea replies,
# all inside throw-away network namespaces (pbf-*), and stores one message per
# file as test fixtures:
#   OUTDIR/<name>.bin          the UDP payload (BOOTP/DHCP message bytes)
#   OUTDIR/<name>.tcpdump.txt  `tcpdump -r one.pcap -vvv -n`: a decode that is not ours
#   OUTDIR/fixtures.json       header fields + options {code: hex}, read by the codec tests
#   OUTDIR/README.md           provenance and key facts per fixture
# Every fixture's header and option list is cross-checked against tcpdump's decode.
# Needs root and the Debian packages isc-dhcp-client isc-dhcp-relay kea-dhcp4-server
# kea-admin tcpdump qemu-system-x86 ipxe-qemu ovmf python3. Not run in CI: the
# fixtures are committed. Takes about 30 s (TCG QEMU boots twice).
# Usage: scripts/capture-dhcp-fixtures.sh [OUTDIR]   (default test/fixtures/dhcp)
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/../test/fixtures/dhcp}")
W=$(mktemp -d /tmp/pbf-XXXXXX)
NS=(pbf-srv pbf-tor pbf-cli pbf-rcl pbf-perf)
MAC_DIRECT=52:54:00:f1:00:01 MAC_RELAYED=52:54:00:f1:00:02 MAC_IPXE=52:54:00:12:34:56 MAC_EFI=52:54:00:12:34:57
PIDS=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  # Anything still alive in our namespaces was started by this script.
  for n in "${NS[@]}"; do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
  if ((rc != 0)); then echo "failed (rc $rc); logs:" >&2; tail -n 5 "$W"/*.log >&2 2>/dev/null || true; fi
  [[ -n ${PBF_KEEP:-} ]] && echo "kept $W" >&2 || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[capture] $*" >&2; }
# wait_for SECONDS CMD...: polls CMD until it succeeds; fails after SECONDS.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < end)) || return 1; sleep 0.2; done
}
# count_msgs PCAP MAC TYPE: how many DHCP messages of TYPE (tcpdump's word) MAC's client sent.
count_msgs() {
  tcpdump -r "$1" -n -vvv "ether src $2" 2>/dev/null | grep -c "DHCP-Message (53), length 1: $3" || true
}
has_msgs() { (($(count_msgs "$1" "$2" "$3") >= $4)); }

# capture NS IF NAME: starts tcpdump writing $W/NAME.pcap; returns once it listens.
capture() {
  ip netns exec "$1" tcpdump -i "$2" -n -s 1500 --immediate-mode -U -w "$W/$3.pcap" 'udp port 67 or udp port 68' 2>"$W/tcpdump-$3.log" &
  PIDS+=($!); CAPS[$3]=$!
  wait_for 10 grep -q 'listening on' "$W/tcpdump-$3.log"
}
declare -A CAPS
stop_capture() { sleep 0.5; kill "${CAPS[$1]}"; wait "${CAPS[$1]}" 2>/dev/null || true; }

mkdir -p "$OUT"
log "topology"
for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; ip -n "$n" link set lo up; done
# client <-> server directly (step 1)
ip -n pbf-srv link add lan-s type veth peer name cl-c netns pbf-cli
ip -n pbf-cli link set cl-c address $MAC_DIRECT
ip -n pbf-srv addr add 10.30.0.1/24 dev lan-s
# rack (tor namespace: bridge with a client veth and a QEMU tap) -> relay -> WAN veth -> server
ip -n pbf-srv link add wan-s type veth peer name wan-t netns pbf-tor
ip -n pbf-srv addr add 10.99.0.1/30 dev wan-s; ip -n pbf-tor addr add 10.99.0.2/30 dev wan-t
ip -n pbf-tor link add br0 type bridge stp_state 0 forward_delay 0
ip -n pbf-tor addr add 10.20.0.1/24 dev br0
ip -n pbf-tor link add rcl-t type veth peer name rcl-c netns pbf-rcl
ip -n pbf-rcl link set rcl-c address $MAC_RELAYED
ip -n pbf-tor link set rcl-t master br0
ip -n pbf-tor tuntap add dev tap0 mode tap; ip -n pbf-tor link set tap0 master br0
# perfdhcp's namespace: it plays a relay with giaddr 10.98.0.2
ip -n pbf-srv link add pf-s type veth peer name pf-p netns pbf-perf
ip -n pbf-srv addr add 10.98.0.1/24 dev pf-s; ip -n pbf-perf addr add 10.98.0.2/24 dev pf-p
for l in "pbf-srv lan-s" "pbf-cli cl-c" "pbf-srv wan-s" "pbf-tor wan-t" "pbf-tor br0" "pbf-tor rcl-t" "pbf-rcl rcl-c" \
  "pbf-tor tap0" "pbf-srv pf-s" "pbf-perf pf-p"; do
  set -- $l; ip -n "$1" link set "$2" up
done
ip -n pbf-srv route add 10.20.0.0/24 via 10.99.0.2
ip netns exec pbf-tor sysctl -qw net.ipv4.ip_forward=1

log "kea"
# A short renew timer on the direct subnet only, so that dhclient renews within seconds there while
# the clients behind the relay stay quiet; PXE clients get next-server and a file name.
cat >"$W/kea.json" <<JSON
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "lan-s", "wan-s", "pf-s" ] },
  "lease-database": { "type": "memfile", "persist": false },
  "valid-lifetime": 600, "renew-timer": 300, "rebind-timer": 500,
  "client-classes": [ { "name": "pxe", "test": "substring(option[60].hex,0,9) == 'PXEClient'",
                        "next-server": "10.99.0.1", "boot-file-name": "pbf-boot.ipxe" } ],
  "subnet4": [
    { "id": 1, "subnet": "10.30.0.0/24", "interface": "lan-s", "renew-timer": 4, "rebind-timer": 8,
      "pools": [ { "pool": "10.30.0.100 - 10.30.0.199" } ],
      "option-data": [ { "name": "routers", "data": "10.30.0.1" }, { "name": "domain-name", "data": "pbf.test" } ] },
    { "id": 2, "subnet": "10.20.0.0/24", "pools": [ { "pool": "10.20.0.100 - 10.20.0.199" } ],
      "option-data": [ { "name": "routers", "data": "10.20.0.1" } ] },
    { "id": 3, "subnet": "10.98.0.0/24", "pools": [ { "pool": "10.98.0.100 - 10.98.0.199" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "$W/kea.log" } ], "severity": "INFO" } ] } }
JSON
KEA_PIDFILE_DIR=$W KEA_LOCKFILE_DIR=$W ip netns exec pbf-srv kea-dhcp4 -c "$W/kea.json" >"$W/kea-stdout.log" 2>&1 &
PIDS+=($!)
wait_for 15 grep -qs 'DHCP4_STARTED' "$W/kea.log"

# dhclient with Debian's default request list and a fixed host name (the default sends gethostname()).
cat >"$W/dhclient.conf" <<'CONF'
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
send host-name "pbf-client";
request subnet-mask, broadcast-address, time-offset, routers,
	domain-name, domain-name-servers, domain-search, host-name,
	dhcp6.name-servers, dhcp6.domain-search, dhcp6.fqdn, dhcp6.sntp-servers,
	netbios-name-servers, netbios-scope, interface-mtu,
	rfc3442-classless-static-routes, ntp-servers;
CONF
# The script configures the leased address so that the renewal can go out unicast.
cat >"$W/dhclient-script" <<'SH'
#!/bin/sh
case "$reason" in
  BOUND|REBOOT|RENEW|REBIND)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_routers" ] && ip route replace default via "${new_routers%% *}" dev "$interface" ;;
esac
exit 0
SH
chmod +x "$W/dhclient-script"
# dhclient_bg NS IF TAG: runs dhclient in the foreground of a background job.
dhclient_bg() {
  ip netns exec "$1" timeout 40 dhclient -4 -d -v -1 -cf "$W/dhclient.conf" -sf "$W/dhclient-script" \
    -lf "$W/$3.leases" -pf "$W/$3.pid" "$2" >>"$W/dhclient-$3.log" 2>&1 &
  DHC=$!; PIDS+=($DHC)
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
acks() { grep -c '^DHCPACK' "$W/dhclient-$1.log" || true; }
acks_at_least() { (($(acks "$1") >= $2)); }

log "step 1: dhclient <-> kea directly: DORA, renewal, INIT-REBOOT, release"
capture pbf-cli cl-c direct
dhclient_bg pbf-cli cl-c direct
wait_for 20 acks_at_least direct 1
wait_for 20 acks_at_least direct 2 # renewal after Kea's renew-timer (4 s), unicast with ciaddr
stop_pid "$DHC"
dhclient_bg pbf-cli cl-c direct    # lease file present: INIT-REBOOT request
wait_for 20 acks_at_least direct 3
stop_pid "$DHC"
ip netns exec pbf-cli timeout 15 dhclient -4 -v -r -cf "$W/dhclient.conf" -sf "$W/dhclient-script" \
  -lf "$W/direct.leases" -pf "$W/direct.pid" cl-c >>"$W/dhclient-direct.log" 2>&1
wait_for 10 has_msgs "$W/direct.pcap" $MAC_DIRECT Release 1
stop_capture direct

relay_start() {
  ip netns exec pbf-tor timeout 120 dhcrelay -4 -d --no-pid "$@" -id br0 -iu wan-t 10.99.0.1 >>"$W/dhcrelay.log" 2>&1 &
  RELAY=$!; PIDS+=($RELAY)
  wait_for 10 grep -q 'Sending on' "$W/dhcrelay.log"
  sleep 0.5
}

for variant in plain opt82; do
  log "step 2 ($variant): dhclient -> dhcrelay ${variant/plain/without -a} -> kea"
  capture pbf-srv wan-s "relay-$variant"
  capture pbf-tor br0 "rack-$variant"
  rm -f "$W/relayed.leases"; : >"$W/dhclient-relayed.log"; : >"$W/dhcrelay.log"
  if [[ $variant == opt82 ]]; then relay_start -a; else relay_start; fi
  dhclient_bg pbf-rcl rcl-c relayed
  wait_for 20 acks_at_least relayed 1
  stop_pid "$DHC"; stop_pid "$RELAY"
  stop_capture "relay-$variant"; stop_capture "rack-$variant"
done

# qemu_pxe TAG MAC TIMEOUT [QEMU ARGS...]: PXE-boots QEMU's NIC ROM on tap0 until its DHCPREQUEST is seen.
qemu_pxe() {
  local tag=$1 mac=$2 t=$3; shift 3
  capture pbf-tor br0 "rack-$tag"
  capture pbf-srv wan-s "relay-$tag"
  : >"$W/dhcrelay.log"; relay_start -a
  ip netns exec pbf-tor timeout "$t" qemu-system-x86_64 -machine pc,accel=tcg -m 256 -nographic -no-reboot "$@" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "virtio-net-pci,netdev=n0,mac=$mac" -boot n \
    </dev/null >"$W/qemu-$tag.log" 2>&1 &
  local q=$!; PIDS+=($q)
  wait_for "$t" has_msgs "$W/rack-$tag.pcap" "$mac" Request 1 || log "$tag: no DHCPREQUEST within ${t}s"
  stop_pid "$q"; stop_pid "$RELAY"
  stop_capture "rack-$tag"; stop_capture "relay-$tag"
}
log "step 3: QEMU iPXE ROM (SeaBIOS) PXE boot through dhcrelay -a"
qemu_pxe ipxe $MAC_IPXE 40
log "step 3b: QEMU iPXE ROM under OVMF (UEFI) PXE boot through dhcrelay -a"
# A SMBIOS UUID here (the BIOS run keeps QEMU's default all-zero one) so that option 97 carries one.
qemu_pxe efi $MAC_EFI 90 -bios /usr/share/ovmf/OVMF.fd -uuid 8f3c2b1a-6d5e-4f70-9a81-b2c3d4e5f607

log "step 4: perfdhcp as a relay (giaddr 10.98.0.2, port 67)"
capture pbf-perf pf-p perf
ip netns exec pbf-perf timeout 30 perfdhcp -4 -l 10.98.0.2 -L 67 -r 10 -n 5 10.98.0.1 >"$W/perfdhcp.log" 2>&1 || true
stop_capture perf

log "extracting"
mkdir -p "$W/out"
python3 - "$W" "$W/out" <<'PY'
import json, re, struct, subprocess, sys
W, OUT = sys.argv[1], sys.argv[2]
TYPES = {1: 'discover', 2: 'offer', 3: 'request', 4: 'decline', 5: 'ack', 6: 'nak', 7: 'release', 8: 'inform'}
KEA = 'Kea 2.2.0 (kea-dhcp4-server)'
DHCLIENT = 'dhclient -4 -d -v -1 -cf dhclient.conf -sf script -lf LEASES IF'
RELAY = 'dhcrelay -4 -d --no-pid -id br0 -iu wan-t 10.99.0.1'
QEMU = 'qemu-system-x86_64 -machine pc,accel=tcg -m 256 -nographic -no-reboot -netdev tap,...,ifname=tap0 -device virtio-net-pci,mac=%s -boot n'
PERF = 'perfdhcp -4 -l 10.98.0.2 -L 67 -r 10 -n 5 10.98.0.1'
Z = '0.0.0.0'

def ipv4(b): return '.'.join(map(str, b))

def records(path):
    """Yields (global header, record bytes, frame) from a classic pcap file."""
    try: b = open(path, 'rb').read()
    except FileNotFoundError: return
    e = '<' if b[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
    assert struct.unpack(e + 'I', b[20:24])[0] == 1, 'expected Ethernet link type'
    at = 24
    while at + 16 <= len(b):
        cap = struct.unpack(e + 'I', b[at + 8:at + 12])[0]
        if at + 16 + cap > len(b): break
        yield b[:24], b[at:at + 16 + cap], b[at + 16:at + 16 + cap]
        at += 16 + cap

def dhcp(frame):
    """Ethernet/IPv4/UDP -> (src, dst, payload) or None."""
    if len(frame) < 42 or frame[12:14] != b'\x08\x00' or frame[23] != 17: return None
    ihl = (frame[14] & 15) * 4
    u = 14 + ihl
    sp, dp, ln = struct.unpack('>HHH', frame[u:u + 6])
    p = frame[u + 8:u + ln]
    if len(p) < 240 or p[236:240] != b'\x63\x82\x53\x63': return None
    return f'{ipv4(frame[26:30])}:{sp}', f'{ipv4(frame[30:34])}:{dp}', p

def options(p):
    """RFC 2132 option walk; repeated codes are joined (RFC 3396). Returns ({code: hex}, [(code, len)])."""
    out, seq, i = {}, [], 240
    while i < len(p):
        c = p[i]
        if c == 0: i += 1; continue
        if c == 255: break
        l = p[i + 1]; v = p[i + 2:i + 2 + l]
        assert len(v) == l, f'option {c} runs past the end'
        out[str(c)] = out.get(str(c), '') + v.hex(); seq.append((c, l)); i += 2 + l
    return out, seq

def describe(p):
    opts, seq = options(p)
    cstr = lambda b: b.split(b'\0', 1)[0].decode('latin-1')
    return dict(op=p[0], htype=p[1], hlen=p[2], hops=p[3], xid=p[4:8].hex(), secs=struct.unpack('>H', p[8:10])[0],
                flags=struct.unpack('>H', p[10:12])[0], ciaddr=ipv4(p[12:16]), yiaddr=ipv4(p[16:20]), siaddr=ipv4(p[20:24]),
                giaddr=ipv4(p[24:28]), chaddr=p[28:28 + p[2]].hex(':'), sname=cstr(p[44:108]), file=cstr(p[108:236]),
                messageType=TYPES.get(int(opts.get('53', '00'), 16), 'none'), length=len(p), options=opts), seq

def cross_check(name, f, seq, txt):
    """Compares our reading with tcpdump's decode of the same packet; any difference stops the script."""
    want = [f'Request from {f["chaddr"]}, length {f["length"]}' if f['op'] == 1 else f'Reply, length {f["length"]}']
    # tcpdump leaves out fields that are zero
    for label, key in (('hops', 'hops'), ('xid', 'xid'), ('secs', 'secs')):
        v = int(f[key], 16) if key == 'xid' else f[key]
        if v: want.append(f'{label} {v:#x}' if key == 'xid' else f'{label} {v}')
    want.append(f'(0x{f["flags"]:04x})')
    for label, key in (('Client-IP', 'ciaddr'), ('Your-IP', 'yiaddr'), ('Server-IP', 'siaddr'), ('Gateway-IP', 'giaddr')):
        if f[key] != Z: want.append(f'{label} {f[key]}')
    if f['op'] == 2: want.append(f'Client-Ethernet-Address {f["chaddr"]}')
    if f['file']: want.append(f'file "{f["file"]}"')
    for w in want:
        assert w in txt, f'{name}: tcpdump decode lacks {w!r}'
    theirs = [(int(c), int(l)) for c, l in re.findall(r'^\t    \S.*?\((\d+)\), length (\d+)', txt, re.M) if c not in ('0', '255')]
    assert theirs == seq, f'{name}: options differ from tcpdump: {theirs} vs {seq}'

# (pcap, fixture name, predicate, sender, command, required)
dc = lambda f: f['chaddr'] == '52:54:00:f1:00:01'
rc = lambda f: f['chaddr'] == '52:54:00:f1:00:02'
q = lambda mac: lambda f: f['chaddr'] == mac
req = lambda f, t: f['op'] == 1 and f['messageType'] == t
rep = lambda f, t: f['op'] == 2 and f['messageType'] == t
RULES = [
    ('direct', 'dhclient-discover', lambda f: req(f, 'discover') and dc(f), 'ISC dhclient 4.4.3-P1', DHCLIENT + ' (fresh lease file)', True),
    ('direct', 'kea-offer-direct', lambda f: rep(f, 'offer') and dc(f), KEA, 'reply to dhclient-discover on the client\'s own link', True),
    ('direct', 'dhclient-request-selecting', lambda f: req(f, 'request') and dc(f) and '54' in f['options'], 'ISC dhclient 4.4.3-P1', DHCLIENT + ' (SELECTING)', True),
    ('direct', 'kea-ack-direct', lambda f: rep(f, 'ack') and dc(f), KEA, 'reply to dhclient-request-selecting', True),
    ('direct', 'dhclient-request-renew', lambda f: req(f, 'request') and dc(f) and f['ciaddr'] != Z, 'ISC dhclient 4.4.3-P1', DHCLIENT + ' (RENEWING after T1 = 4 s, unicast to the server)', True),
    ('direct', 'kea-ack-renew', lambda f: rep(f, 'ack') and dc(f) and f['ciaddr'] != Z, KEA, 'reply to dhclient-request-renew (unicast)', True),
    ('direct', 'dhclient-request-init-reboot', lambda f: req(f, 'request') and dc(f) and f['ciaddr'] == Z and '54' not in f['options'], 'ISC dhclient 4.4.3-P1', DHCLIENT + ' (restarted with its lease file: INIT-REBOOT)', True),
    ('direct', 'dhclient-release', lambda f: req(f, 'release') and dc(f), 'ISC dhclient 4.4.3-P1', 'dhclient -4 -v -r -cf dhclient.conf -lf LEASES IF (unicast to the server)', True),
    ('relay-plain', 'dhcrelay-dhclient-discover', lambda f: req(f, 'discover') and rc(f), 'ISC dhclient via ISC dhcrelay 4.4.3-P1', RELAY + ' (captured on the server\'s link)', True),
    ('relay-plain', 'kea-offer-relayed', lambda f: rep(f, 'offer') and rc(f), KEA, 'reply to dhcrelay-dhclient-discover, as the relay receives it', True),
    ('relay-plain', 'dhcrelay-dhclient-request', lambda f: req(f, 'request') and rc(f), 'ISC dhclient via ISC dhcrelay 4.4.3-P1', RELAY + ' (captured on the server\'s link)', True),
    ('relay-plain', 'kea-ack-relayed', lambda f: rep(f, 'ack') and rc(f), KEA, 'reply to dhcrelay-dhclient-request, as the relay receives it', True),
    ('relay-opt82', 'dhcrelay-dhclient-discover-opt82', lambda f: req(f, 'discover') and rc(f), 'ISC dhclient via ISC dhcrelay 4.4.3-P1 -a', RELAY.replace('-d ', '-d -a ') + ' (captured on the server\'s link)', True),
    ('relay-opt82', 'kea-offer-relayed-opt82', lambda f: rep(f, 'offer') and rc(f), KEA, 'reply to dhcrelay-dhclient-discover-opt82, as the relay receives it', True),
    ('relay-opt82', 'dhcrelay-dhclient-request-opt82', lambda f: req(f, 'request') and rc(f), 'ISC dhclient via ISC dhcrelay 4.4.3-P1 -a', RELAY.replace('-d ', '-d -a ') + ' (captured on the server\'s link)', True),
    ('relay-opt82', 'kea-ack-relayed-opt82', lambda f: rep(f, 'ack') and rc(f), KEA, 'reply to dhcrelay-dhclient-request-opt82, as the relay receives it', True),
    ('rack-opt82', 'dhcrelay-forwarded-offer-opt82', lambda f: rep(f, 'offer') and rc(f), 'ISC dhcrelay 4.4.3-P1 -a forwarding Kea\'s offer', 'kea-offer-relayed-opt82 as dhcrelay sends it on to the client (captured on the rack bridge)', True),
    ('rack-ipxe', 'ipxe-discover', lambda f: req(f, 'discover') and q('52:54:00:12:34:56')(f), 'iPXE NIC ROM of QEMU (Debian ipxe-qemu, pxe-virtio.rom), SeaBIOS', QEMU % '52:54:00:12:34:56' + ' (captured on the rack bridge)', True),
    ('rack-ipxe', 'ipxe-request', lambda f: req(f, 'request') and q('52:54:00:12:34:56')(f), 'iPXE NIC ROM of QEMU (Debian ipxe-qemu, pxe-virtio.rom), SeaBIOS', QEMU % '52:54:00:12:34:56' + ' (captured on the rack bridge)', True),
    ('relay-ipxe', 'kea-offer-pxe-relayed-opt82', lambda f: rep(f, 'offer') and q('52:54:00:12:34:56')(f), KEA, 'reply to the relayed ipxe-discover (client class "pxe": next-server, boot-file-name), as the relay receives it', True),
    ('rack-efi', 'ipxe-efi-discover', lambda f: req(f, 'discover') and q('52:54:00:12:34:57')(f), 'iPXE EFI driver of QEMU (Debian ipxe-qemu, efi-virtio.rom) under OVMF', QEMU % '52:54:00:12:34:57' + ' -bios /usr/share/ovmf/OVMF.fd -uuid 8f3c2b1a-6d5e-4f70-9a81-b2c3d4e5f607 (captured on the rack bridge)', False),
    ('rack-efi', 'ipxe-efi-request', lambda f: req(f, 'request') and q('52:54:00:12:34:57')(f), 'iPXE EFI driver of QEMU (Debian ipxe-qemu, efi-virtio.rom) under OVMF', QEMU % '52:54:00:12:34:57' + ' -bios /usr/share/ovmf/OVMF.fd -uuid 8f3c2b1a-6d5e-4f70-9a81-b2c3d4e5f607 (captured on the rack bridge)', False),
    ('perf', 'perfdhcp-relay-discover', lambda f: req(f, 'discover'), 'perfdhcp (Kea 2.2.0, kea-admin) acting as a relay', PERF, True),
    ('perf', 'perfdhcp-relay-request', lambda f: req(f, 'request'), 'perfdhcp (Kea 2.2.0, kea-admin) acting as a relay', PERF, True),
]

fixtures, prov, missing = {}, {}, []
for pcap, name, pred, who, how, required in RULES:
    for ghdr, rec, frame in records(f'{W}/{pcap}.pcap'):
        d = dhcp(frame)
        if not d: continue
        src, dst, p = d
        f, seq = describe(p)
        if not pred(f): continue
        one = f'{W}/one.pcap'
        open(one, 'wb').write(ghdr + rec)
        txt = subprocess.run(['tcpdump', '-r', one, '-vvv', '-n'], capture_output=True, text=True, check=True).stdout
        cross_check(name, f, seq, txt)
        f['wire'] = dict(src=src, dst=dst)
        fixtures[name] = f
        prov[name] = (who, how)
        open(f'{OUT}/{name}.bin', 'wb').write(p)
        open(f'{OUT}/{name}.tcpdump.txt', 'w').write(txt)
        break
    else:
        (missing.append(name) if required else print(f'optional fixture {name} not captured', file=sys.stderr))
if missing: sys.exit(f'not captured: {", ".join(missing)}')
json.dump(fixtures, open(f'{OUT}/fixtures.json', 'w'), indent=1)

def show(code, hexv):
    v = bytes.fromhex(hexv)
    if code in ('82', '175', '43'):  # encapsulated sub-options
        subs, i = [], 0
        while i + 1 < len(v):
            subs.append(f'{v[i]}:{v[i + 2:i + 2 + v[i + 1]].hex()}'); i += 2 + v[i + 1]
        return '{' + ' '.join(subs) + '}'
    if code == '55': return '[' + ','.join(str(x) for x in v) + ']'
    if code in ('1', '3', '6', '28', '50', '54') and len(v) % 4 == 0:
        return ','.join(ipv4(v[i:i + 4]) for i in range(0, len(v), 4))
    if len(v) > 1 and all(32 <= x < 127 for x in v): return json.dumps(v.decode())
    return hexv
lines = ['# Captured DHCP fixtures', '',
         'Real DHCPv4 messages (UDP payload only, one per `.bin`) captured by `scripts/capture-dhcp-fixtures.sh` in',
         'network namespaces on Debian bookworm. `<name>.tcpdump.txt` is tcpdump 4.99.3\'s `-vvv -n` decode of the',
         'same packet (an independent decoder); `fixtures.json` holds the header fields and options `{code: hex}`',
         '(repeated codes joined), read by a plain Python walk and cross-checked against the tcpdump decode.',
         'Kea 2.2.0 answered everything (pools 10.30.0.100-199 direct, 10.20.0.100-199 behind the relay,',
         '10.98.0.100-199 for perfdhcp). Option values below: text in quotes, sub-options as {code:hex}.', '',
         'Things worth knowing when decoding them:', '',
         '- Packets captured on the sending host show "bad udp cksum" in the tcpdump text: checksum offload on',
         '  veth, the checksum is filled in later. Only the UDP payload is stored, so this does not matter.',
         '- tcpdump leaves out zero fields (xid 0, secs 0, hops 0, zero addresses) from its header line.',
         '- iPXE sends option 77 as the bare string "iPXE", not in RFC 3004 form (tcpdump: "invalid option").',
         '- Option 97 is type 0 + 16 bytes of SMBIOS UUID, whose first three fields are little-endian:',
         '  -uuid 8f3c2b1a-6d5e-4f70-9a81-b2c3d4e5f607 arrives as 1a2b3c8f 5e6d 704f 9a81 b2c3d4e5f607.',
         '  QEMU without -uuid (the BIOS run) sends all zeros.',
         '- iPXE option 175 is encapsulated: 177 = bus id (01 = PCI, 1af4:1000), 235 = version 1.0.0, and one',
         '  sub-option per built-in feature (19 HTTP, 21 TFTP, 23 DNS, ...). It never sends sub-option 176.',
         '- dhcrelay -a adds only sub-option 1 (circuit id = receiving interface name "br0"), no remote id;',
         '  it sets hops 1 and giaddr to the address of br0. Kea echoes option 82 in its replies and dhcrelay',
         '  strips it (and pads to 300 bytes) before forwarding to the client.',
         '- perfdhcp numbers its transactions from xid 0 and reuses the DISCOVER xid in the REQUEST; it sends',
         '  option 61 built from its MAC, dhclient sends none (Kea echoes 61 when present).', '']
for name, f in fixtures.items():
    who, how = prov[name]
    hdr = [f'{f["messageType"].upper()}', f'op {f["op"]}', f'xid {f["xid"]}', f'chaddr {f["chaddr"]}', f'hops {f["hops"]}',
           f'flags 0x{f["flags"]:04x}'] + [f'{k} {f[k]}' for k in ('ciaddr', 'yiaddr', 'siaddr', 'giaddr') if f[k] != Z]
    if f['sname']: hdr.append(f'sname "{f["sname"]}"')
    if f['file']: hdr.append(f'file "{f["file"]}"')
    hdr.append(f'{f["length"]} bytes, {f["wire"]["src"]} -> {f["wire"]["dst"]}')
    opts = '; '.join(f'{c}={show(c, v)}' for c, v in f['options'].items())
    lines.append(f'- `{name}.bin`: from {who}; `{how}`. {", ".join(hdr)}. Options: {opts}.')
open(f'{OUT}/README.md', 'w').write('\n'.join(lines) + '\n')
print('\n'.join(fixtures))
PY

# Replace the previous fixture set only once the new one is complete.
rm -f "$OUT"/*.bin "$OUT"/*.tcpdump.txt "$OUT/fixtures.json" "$OUT/README.md"
cp "$W"/out/* "$OUT"/
log "wrote $(ls "$W"/out/*.bin | wc -l) fixtures to $OUT"
