#!/bin/sh
# roles/reset: remove the iptables chains Kubernetes, flannel and the CNI plugins created.
#   reset-netfilter.sh apply|check '<chain regex>' iptables [ip6tables ...]
# For each table (filter, nat, mangle, raw): first delete the rules of other chains that jump
# or go to a matching chain, then flush and delete the matching chains, in one
# iptables-restore --noflush transaction. Built-in chains are never flushed and no policy is
# changed. Prints one line per change ("<cmd> -t <table> <rule>"); nothing when clean.
set -eu
mode=$1
pattern=$2
shift 2
for ipt in "$@"; do
  command -v "$ipt-save" >/dev/null 2>&1 || continue
  command -v "$ipt-restore" >/dev/null 2>&1 || continue
  for table in filter nat mangle raw; do
    saved=$("$ipt-save" -t "$table" 2>/dev/null) || continue
    plan=$(printf '%s\n' "$saved" | awk -v re="$pattern" '
      /^:/ { name = substr($1, 2); if (name ~ re) chains[++n] = name; next }
      /^-A / {
        target = ""
        for (i = 3; i <= NF; i++) if ($i == "-j" || $i == "-g") target = $(i + 1)
        if (target ~ re && $2 !~ re) { sub(/^-A /, "-D "); print }
      }
      END {
        for (i = 1; i <= n; i++) print "-F " chains[i]
        for (i = 1; i <= n; i++) print "-X " chains[i]
      }')
    [ -n "$plan" ] || continue
    printf '%s\n' "$plan" | sed "s|^|$ipt -t $table |"
    if [ "$mode" = apply ]; then
      printf '*%s\n%s\nCOMMIT\n' "$table" "$plan" | "$ipt-restore" --noflush
    fi
  done
done
