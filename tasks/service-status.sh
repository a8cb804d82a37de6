#!/bin/sh
#% description Whether a systemd unit is active, and its latest journal lines
#% param unit
#% param lines=20
#% timeout 60
#% rule stdout capture=state ^state (\S+)$
unit={{unit}}
lines={{lines}}
echo "state $(systemctl is-active "$unit" || true)"
journalctl --no-pager -n "$lines" -u "$unit" 2>&1 || true
