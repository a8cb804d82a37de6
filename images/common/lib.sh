# Shared by stage1 and the lab stage2 (POSIX sh, busybox ash). Sourced, not run.

# say TEXT: one line on the console(s), prefixed with $PODBOOT_PREFIX.
# init sends stdout to the first console= of the command line; the other
# consoles named there get the line too, so an operator watching either sees it.
# What a stage1 that stopped left on its disk: a streamed install wipes the
# old boot areas before its first byte (images/stage1/stream.sh).
disk_left() {
	if [ -e "${PODBOOT_WORK:-/tmp/podboot}/stream" ]; then
		echo "the disk holds nothing bootable (no partition table, no boot code)"
	else
		echo "the disk was not touched"
	fi
}

say() {
	printf '%s: %s\n' "${PODBOOT_PREFIX:-podboot}" "$*"
	for _c in ${PODBOOT_EXTRA_CONSOLES:-}; do
		printf '%s: %s\n' "${PODBOOT_PREFIX:-podboot}" "$*" >"$_c" 2>/dev/null
	done
}

# tls_first: curl options that put ChaCha20-Poly1305 first among the TLS 1.3
# ciphers on a CPU without AES instructions (emulated or old ones), where it
# decrypts about 3x faster than AES-GCM (64 MiB under QEMU TCG: 3.3 s against
# 10.2 s). With AES instructions the library's order stands. The pod gives
# ChaCha20 to a client that puts it first (src/net/http/listen.ts).
# ${PODBOOT_CPUINFO} is for tests.
tls_first() {
	grep -qw aes "${PODBOOT_CPUINFO:-/proc/cpuinfo}" 2>/dev/null ||
		echo "--tls13-ciphers TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"
}

# Console devices named by console= on the kernel command line, in order, once each.
cmdline_consoles() {
	_seen=''
	for _w in $(cat /proc/cmdline); do
		case "$_w" in
		console=*)
			_d=${_w#console=}
			_d=/dev/${_d%%,*}
			case " $_seen " in *" $_d "*) ;; *) _seen="$_seen $_d" ;; esac
			;;
		esac
	done
	echo $_seen
}

# mount the kernel file systems an initramfs needs
mount_basics() {
	mkdir -p /proc /sys /dev /tmp /run
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev 2>/dev/null
	mkdir -p /dev/pts
	mount -t devpts devpts /dev/pts 2>/dev/null
}

# stdout/stderr to the first console of the command line, the rest get say() lines
setup_console() {
	_all=$(cmdline_consoles)
	_first=''
	PODBOOT_EXTRA_CONSOLES=''
	for _c in $_all; do
		if [ -z "$_first" ]; then _first=$_c; else PODBOOT_EXTRA_CONSOLES="$PODBOOT_EXTRA_CONSOLES $_c"; fi
	done
	if [ -n "$_first" ] && [ -c "$_first" ]; then exec >"$_first" 2>&1 <"$_first"; fi
	export PODBOOT_EXTRA_CONSOLES
}

# insmod every module listed in /lib/modules/load-order (dependencies first,
# computed at build time: busybox insmod resolves nothing). A module whose
# hardware is absent still loads; one that fails is reported and skipped.
load_modules() {
	[ -f /lib/modules/load-order ] || return 0
	while read -r _m; do
		[ -n "$_m" ] || continue
		insmod "/lib/modules/$_m.ko" 2>/tmp/insmod.err || say "module $_m: $(cat /tmp/insmod.err)"
	done </lib/modules/load-order
}

# load_module NAME: insmod a module packed for loading on demand (not in
# load-order) and, first, the dependencies load-order lacks, as the build
# listed them in NAME.order. Stops at the first failure (said). Modules are
# in ${PODBOOT_MODULES:-/lib/modules} (tests point it elsewhere).
load_module() {
	_dir=${PODBOOT_MODULES:-/lib/modules}
	[ -f "$_dir/$1.order" ] || { say "module $1: not in this image"; return 1; }
	while read -r _m; do
		[ -n "$_m" ] || continue
		_err=$(insmod "$_dir/$_m.ko" 2>&1) || { say "module $_m: $_err"; return 1; }
	done <"$_dir/$1.order"
}

# efivars_up [EFI_DIR]: make the EFI variables reachable (efibootmgr, and a
# kickstart installing a boot loader) when the kernel was started by UEFI
# firmware, i.e. EFI_DIR (default /sys/firmware/efi) exists. Debian's kernel
# has efivarfs as a module; under BIOS its insmod fails (No such device), so
# it is loaded here and not from load-order.
# Returns 0 mounted, 1 UEFI but failed (said why), 2 not UEFI (nothing done).
efivars_up() {
	_efi=${1:-/sys/firmware/efi}
	[ -d "$_efi" ] || return 2
	load_module efivarfs || return 1
	_err=$(mount -t efivarfs efivarfs "$_efi/efivars" 2>&1) || { say "efivarfs: mount: $_err"; return 1; }
}

# Once a server is installed it must not network-boot again: remove the
# firmware's network boot entries (PXE and HTTP boot, IPv4 and IPv6), then
# print the boot order left. Entries are said by number only: a name such as
# "UEFI PXEv4 …" on the console would read like a network boot attempt.
# Needs efivars_up first.
drop_network_boot_entries() {
	_list=$(efibootmgr 2>&1) || { say "network boot entries left in place: efibootmgr: $(echo "$_list" | head -n 1)"; return 1; }
	_rc=0
	# entries as "Boot0003* UEFI PXEv4 (MAC:5254009B0101)"; the "*" marks an active one
	for _n in $(echo "$_list" | sed -n 's/^Boot\([0-9A-Fa-f]\{4\}\)\*\{0,1\} .*\(PXE\|Network\|IPv4\|IPv6\|HTTP\).*/\1/p'); do
		if _err=$(efibootmgr -q -b "$_n" -B 2>&1); then
			say "removed network boot entry Boot$_n"
		else
			say "could not remove network boot entry Boot$_n: $_err"
			_rc=1
		fi
	done
	say "boot order: $(efibootmgr 2>&1 | sed -n 's/^BootOrder: //p')"
	return $_rc
}

# normalize a MAC (dashes or colons, any case) to lower-case colon form
mac_colons() {
	echo "$1" | tr 'A-F-' 'a-f:'
}

# The interface whose MAC is $1, else the first ethX, else the first non-lo.
pick_nic() {
	_want=$(mac_colons "$1")
	for _i in /sys/class/net/*; do
		[ -e "$_i/address" ] || continue
		if [ -n "$_want" ] && [ "$(cat "$_i/address")" = "$_want" ]; then
			basename "$_i"
			return 0
		fi
	done
	for _i in /sys/class/net/eth*; do
		[ -e "$_i" ] && { basename "$_i"; return 0; }
	done
	for _i in /sys/class/net/*; do
		_n=$(basename "$_i")
		[ "$_n" = lo ] || { echo "$_n"; return 0; }
	done
	return 1
}

# dhcp_up IFACE: bring it up and get a lease with udhcpc (bounded: 6 rounds of
# 10 discovers). udhcpc backgrounds itself once bound and keeps renewing.
# Prints the address.
dhcp_up() {
	ip link set lo up
	ip link set "$1" up
	rm -f /run/podboot-ip
	_round=1
	while [ $_round -le 6 ]; do
		if udhcpc -i "$1" -s /lib/podboot/udhcpc.script -t 10 -T 2 -A 2 -n -p /run/udhcpc.pid >/tmp/udhcpc.log 2>&1; then
			cat /run/podboot-ip
			return 0
		fi
		_round=$((_round + 1))
	done
	return 1
}

# vmedia_config FILE: the per-server config block a virtual-media boot carries
# (src/vmedia/block.ts, unpacked by the kernel as a second initrd). Only plain
# PODBOOT_X=value lines up to "#end" are sourced, so nothing in the block can
# run a command; the root CA after "#end" becomes /etc/podboot/root.pem. Fails
# on the unfilled placeholder (no settings, no CA).
vmedia_config() {
	grep -qx '#end' "$1" || return 1
	sed -n '1,/^#end$/p' "$1" | grep -E '^PODBOOT_[A-Z0-9_]+=[A-Za-z0-9._:/+=~,-]*$' >/tmp/vmedia.env || return 1
	. /tmp/vmedia.env
	mkdir -p /etc/podboot
	sed -n '/^#end$/,$p' "$1" | sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' >/etc/podboot/root.pem
	[ -s /etc/podboot/root.pem ]
}

# static_up IFACE ADDRESS PREFIX [GATEWAY] [DNS,DNS...]: the address a config
# block gives, where there is no DHCP to ask. Prints the address.
static_up() {
	ip link set lo up
	ip link set "$1" up
	ip -4 addr flush dev "$1"
	ip addr add "$2/$3" dev "$1" || return 1
	if [ -n "$4" ]; then ip route replace default via "$4" dev "$1" || return 1; fi
	: >/etc/resolv.conf
	for _d in $(echo "$5" | tr ',' ' '); do echo "nameserver $_d" >>/etc/resolv.conf; done
	echo "$2"
}
