#!/bin/sh
#% description Space used on a filesystem, as df shows it; fails above a limit
#% param path=/
#% param limit=90
#% timeout 120
#% rule stdout capture=used ^used ([0-9]+)%$
set -eu
path={{path}}
limit={{limit}}
df -P "$path"
used=$(df -P "$path" | awk 'NR == 2 { sub("%", "", $5); print $5 }')
echo "used ${used}%"
if [ "$used" -gt "$limit" ]; then
	echo "ERROR: $path is ${used}% full (limit $limit%)" >&2
	exit 1
fi
