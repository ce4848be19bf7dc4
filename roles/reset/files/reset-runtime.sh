#!/bin/sh
# roles/reset: end what is left of the pods and their network on this host.
#   reset-runtime.sh apply|check
# Environment: RESET_MOUNT_ROOTS (space-separated directories whose mounts go, deepest first),
# RESET_LINKS (link names to delete), RESET_KEEP_ADDRESSES (addresses whose interfaces are never
# touched: the host's SSH address), RESET_SHIM_PATTERN (shim executable names, a glob).
# Prints one line per change; nothing when the host is clean. Never touches the interface of
# the default route or of a kept address, routes, sshd or the firewall.
set -eu
mode=$1
run() {
  echo "$*"
  if [ "$mode" = apply ]; then "$@"; fi
}

# 1. Pod processes: kubelet's cgroups (systemd or cgroupfs driver) and the shims.
if systemctl is-active --quiet kubepods.slice 2>/dev/null; then
  run systemctl stop kubepods.slice
fi
# Only processes of this host's own PID namespace, found through /proc: a container's view
# of /sys/fs/cgroup may include other machines' kubepods, whose PIDs it shows as 0.
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" -gt 1 ] && [ "$pid" != "$$" ] || continue
  target=$(readlink "$dir/exe" 2>/dev/null) || target=
  # shellcheck disable=SC2254
  case ${target##*/} in
    $RESET_SHIM_PATTERN)
      run kill -9 "$pid" 2>/dev/null || true
      continue
      ;;
  esac
  if grep -Eq '/kubepods([./-]|$)' "$dir/cgroup" 2>/dev/null; then
    run kill -9 "$pid" 2>/dev/null || true
  fi
done
[ "$mode" = apply ] && sleep 1

# 2. The pods' network namespaces (ip netns delete unmounts and removes them).
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] || continue
  run ip netns delete "${ns##*/}"
done

# 3. Mounts under the runtime trees, deepest first (a lazy unmount when busy). A root that is
# itself a mount point (a dedicated disk) stays mounted: its tree is emptied by the role.
findmnt -rn -o TARGET | while read -r target; do
  target=$(printf '%b' "$target")
  for root in $RESET_MOUNT_ROOTS; do
    case $target in
      "$root"/*) printf '%s\t%s\n' "${#target}" "$target" ;;
    esac
  done
done | sort -rn | cut -f2- | while read -r target; do
  if [ "$mode" = apply ]; then
    echo "umount $target"
    umount "$target" 2>/dev/null || umount -l "$target"
  else
    echo "umount $target"
  fi
done

# 4. Links: never the interfaces that carry the SSH address or the default route.
keep=$(
  ip -o route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}'
  for addr in ${RESET_KEEP_ADDRESSES:-}; do
    ip -o addr show | awk -v a="$addr" '{split($4, p, "/"); if (p[1] == a) print $2}'
  done
)
is_kept() {
  for k in $keep; do [ "$k" = "$1" ] && return 0; done
  return 1
}
ip -o link show type veth | awk -F': ' '{split($2, n, "@"); print n[1] "\t" $0}' |
  while IFS="$(printf '\t')" read -r name line; do
    case $line in
      *" master cni0 "*) ;;
      *) expr "$name" : 'veth[0-9a-f]\{8\}$' >/dev/null || continue ;;
    esac
    is_kept "$name" && continue
    run ip link delete "$name"
  done
for link in ${RESET_LINKS:-}; do
  ip link show dev "$link" >/dev/null 2>&1 || continue
  is_kept "$link" && continue
  run ip link delete "$link"
done
