#!/bin/sh
# Prints the Debian mirror this machine's apt uses (never a hard-coded host).
set -eu
m=""
if [ -d /etc/apt/sources.list.d ]; then
	m=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
fi
if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
	m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; exit} }' /etc/apt/sources.list | head -n1)
fi
[ -n "$m" ] || { echo "mirror: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2; exit 1; }
echo "$m"
