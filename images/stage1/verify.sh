#!/bin/sh
# podboot stage1 verification, before anything touches a disk. Sourced by the
# agent, or run on its own (tests, operators):
#   sh verify.sh manifest DIR ROOT_CA POD   # DIR/manifest.json{,.p7s}
#   sh verify.sh image DIR ROOT_CA POD      # DIR/image{,.p7s} against DIR/manifest.json
# On failure: prints "REASON: detail" on stdout and exits 1. REASON is one of
# signature, digest, manifest (the pod's failure reasons).

# verify_signed CONTENT P7S ROOT_CA: CMS signature chained to the root, signer with EKU codeSigning,
# issued by the code-signing CA (verify_issuer).
verify_signed() {
	_signer="$1.signer.pem"
	rm -f "$_signer" "$1.certs"
	if ! openssl cms -verify -binary -inform DER -in "$2" -content "$1" -CAfile "$3" -purpose any \
		-signer "$_signer" -certsout "$1.certs" -out /dev/null >"$1.verify.log" 2>&1; then
		VERIFY_REASON=signature
		VERIFY_DETAIL="$(basename "$2"): $(grep -v '^CMS Verification' "$1.verify.log" | head -n 2 | tr '\n' ' ')"
		return 1
	fi
	if ! openssl x509 -in "$_signer" -noout -ext extendedKeyUsage 2>/dev/null | grep -q 'Code Signing'; then
		VERIFY_REASON=signature
		VERIFY_DETAIL="$(basename "$2"): signer $(openssl x509 -in "$_signer" -noout -subject 2>/dev/null) has no code-signing extended key usage"
		return 1
	fi
	verify_issuer "$1.certs" "$_signer" "$3" || {
		VERIFY_REASON=signature
		VERIFY_DETAIL="$(basename "$2"): $VERIFY_DETAIL"
		return 1
	}
	return 0
}

# verify_issuer CERTS SIGNER ROOT_CA: the signer's issuing CA may vouch for code signing.
# The root issues two CAs: the code-signing CA (EKU codeSigning) and the service TLS CA
# (EKU serverAuth) whose key the central node holds; a certificate the service CA issued
# must be refused even when it claims codeSigning. OpenSSL 3.0 has no code-signing
# purpose and -purpose any checks no issuer's EKU, so it is done here, as podboot's
# verifier does it (EKU chaining): among the certificates in the signature, the issuing
# CA is one whose key signed the signer (openssl verify with it as the only anchor, by
# signature, not by name) and that the root issued directly (no -untrusted: a copy made
# with the service CA's key does not pass); its extendedKeyUsage, if it has one, must
# allow Code Signing.
verify_issuer() {
	rm -f "$1".[0-9]*
	awk -v out="$1" '/-----BEGIN CERTIFICATE-----/ { n++; f = out "." n } n { print > f } /-----END CERTIFICATE-----/ { close(f) }' "$1"
	_sfp=$(openssl x509 -in "$2" -noout -fingerprint -sha256)
	VERIFY_DETAIL="the signer's issuing CA certificate is not in the signature"
	for _ica in "$1".[0-9]*; do
		[ -f "$_ica" ] || continue
		[ "$(openssl x509 -in "$_ica" -noout -fingerprint -sha256)" = "$_sfp" ] && continue
		openssl verify -partial_chain -CAfile "$_ica" "$2" >/dev/null 2>&1 || continue
		openssl verify -CAfile "$3" "$_ica" >/dev/null 2>&1 || continue
		_eku=$(openssl x509 -in "$_ica" -noout -ext extendedKeyUsage 2>/dev/null)
		case "$_eku" in
		*'Extended Key Usage'*)
			case "$_eku" in
			*'Code Signing'* | *'Any Extended Key Usage'*) return 0 ;;
			esac
			VERIFY_DETAIL="signer issued by $(openssl x509 -in "$_ica" -noout -subject 2>/dev/null), which is not the code-signing CA (its extended key usage: $(echo "$_eku" | sed 1d | tr -d '\n' | sed 's/^ *//; s/ *$//'))"
			;;
		*) return 0 ;; # no extendedKeyUsage: a CA for every purpose (a CA directory migrated from one signing CA)
		esac
	done
	return 1
}

# json_string FILE KEY / json_number FILE KEY: a top-level scalar of the
# (signed, already verified) manifest. Flattened first: podboot writes it indented.
json_string() {
	tr -d '\n\r' <"$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\\([^\"\\\\]*\\)\".*/\\1/p"
}
json_number() {
	tr -d '\n\r' <"$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p"
}
# json_list FILE KEY: a top-level array of strings, one per line; exit 1 when the key is absent
json_list() {
	_flat=$(tr -d '\n\r' <"$1")
	case "$_flat" in *"\"$2\""*) ;; *) return 1 ;; esac
	echo "$_flat" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\\[\\([^]]*\\)\\].*/\\1/p" | tr ',' '\n' | sed 's/^[[:space:]]*"//; s/"[[:space:]]*$//' | grep -v '^[[:space:]]*$'
	return 0
}

# verify_manifest DIR ROOT_CA POD: signature, fields, expiry, pod allow-list. Sets MANIFEST_*.
verify_manifest() {
	_m="$1/manifest.json"
	verify_signed "$_m" "$_m.p7s" "$2" || return 1
	MANIFEST_NAME=$(json_string "$_m" name)
	MANIFEST_VERSION=$(json_string "$_m" version)
	MANIFEST_SIZE=$(json_number "$_m" size)
	MANIFEST_SHA256=$(json_string "$_m" sha256 | tr 'A-F' 'a-f')
	MANIFEST_NOT_AFTER=$(json_string "$_m" notAfter)
	MANIFEST_ENCODING=$(json_string "$_m" encoding)
	VERIFY_REASON=manifest
	[ -n "$MANIFEST_NAME" ] || { VERIFY_DETAIL="no name"; return 1; }
	[ -n "$MANIFEST_VERSION" ] || { VERIFY_DETAIL="no version"; return 1; }
	[ -n "$MANIFEST_SIZE" ] || { VERIFY_DETAIL="no size"; return 1; }
	echo "$MANIFEST_SHA256" | grep -Eq '^[0-9a-f]{64}$' || { VERIFY_DETAIL="sha256 is not 64 hex digits"; return 1; }
	case "$MANIFEST_ENCODING" in
	'' | zstd) ;;
	*) VERIFY_DETAIL="unknown encoding $(echo "$MANIFEST_ENCODING" | cut -c1-40)"; return 1 ;;
	esac
	# The chunk list (one sha256 per chunkBytes of the image), on one line: a streamed image is checked by it.
	MANIFEST_CHUNK_BYTES=$(json_number "$_m" chunkBytes)
	MANIFEST_CHUNK_SHA256=$(json_list "$_m" chunkSha256 | tr 'A-F\n' 'a-f ' | sed 's/ *$//') || MANIFEST_CHUNK_SHA256=''
	if [ -n "$MANIFEST_CHUNK_BYTES" ] || [ -n "$MANIFEST_CHUNK_SHA256" ]; then
		[ "${MANIFEST_CHUNK_BYTES:-0}" -ge 65536 ] || { VERIFY_DETAIL="chunkBytes must be at least 65536"; return 1; }
		_want=$(((MANIFEST_SIZE + MANIFEST_CHUNK_BYTES - 1) / MANIFEST_CHUNK_BYTES))
		_have=$(echo "$MANIFEST_CHUNK_SHA256" | wc -w | tr -d ' ')
		[ "$_have" = "$_want" ] || { VERIFY_DETAIL="chunkSha256 lists $_have digests, the image has $_want chunks"; return 1; }
		for _d in $MANIFEST_CHUNK_SHA256; do
			echo "$_d" | grep -Eq '^[0-9a-f]{64}$' || { VERIFY_DETAIL="chunkSha256 has $(echo "$_d" | cut -c1-70), not 64 hex digits"; return 1; }
		done
	elif [ "$MANIFEST_ENCODING" = zstd ]; then
		VERIFY_DETAIL="a zstd image needs chunkBytes and chunkSha256"
		return 1
	fi
	if [ -n "$MANIFEST_NOT_AFTER" ]; then
		# ISO 8601 UTC timestamps compare as strings: YYYY-MM-DDTHH:MM:SS
		_now=$(date -u +%Y-%m-%dT%H:%M:%S)
		_na=$(echo "$MANIFEST_NOT_AFTER" | cut -c1-19)
		if awk -v a="$_na" -v b="$_now" 'BEGIN { exit !(a "" < b "") }'; then
			VERIFY_DETAIL="$MANIFEST_NAME $MANIFEST_VERSION expired at $MANIFEST_NOT_AFTER (now $_now)"
			return 1
		fi
	fi
	if _pods=$(json_list "$_m" pods); then
		if ! echo "$_pods" | grep -qxF "$3"; then
			VERIFY_DETAIL="$MANIFEST_NAME $MANIFEST_VERSION is not for pod $3 (pods: $(echo $_pods))"
			return 1
		fi
	fi
	VERIFY_REASON=''
	return 0
}

# verify_image DIR ROOT_CA: size and digest against the verified manifest, then the image's signature.
verify_image() {
	_i="$1/image"
	_size=$(wc -c <"$_i" | tr -d ' ')
	if [ "$_size" != "$MANIFEST_SIZE" ]; then
		VERIFY_REASON=digest
		VERIFY_DETAIL="image is $_size bytes, the manifest says $MANIFEST_SIZE"
		return 1
	fi
	_sum=$(sha256sum "$_i" | cut -d' ' -f1)
	if [ "$_sum" != "$MANIFEST_SHA256" ]; then
		VERIFY_REASON=digest
		VERIFY_DETAIL="image sha256 $_sum, the manifest says $MANIFEST_SHA256"
		return 1
	fi
	verify_signed "$_i" "$_i.p7s" "$2" || return 1
	return 0
}

# run as a command (not when sourced by the agent)
if [ "${PODBOOT_VERIFY_LIB:-}" != 1 ]; then
	case "${1:-}" in
	manifest) verify_manifest "$2" "$3" "$4" || { echo "$VERIFY_REASON: $VERIFY_DETAIL"; exit 1; } ;;
	image) verify_manifest "$2" "$3" "$4" && verify_image "$2" "$3" || { echo "$VERIFY_REASON: $VERIFY_DETAIL"; exit 1; } ;;
	*) echo "usage: verify.sh manifest|image DIR ROOT_CA POD" >&2; exit 2 ;;
	esac
	echo "ok: $MANIFEST_NAME $MANIFEST_VERSION"
fi
