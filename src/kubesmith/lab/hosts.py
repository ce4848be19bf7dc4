"""Lab hosts as containers: create, start, inspect and remove them idempotently."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kubesmith.lab.engine import run
from kubesmith.lab.errors import LabError
from kubesmith.lab.image import SSH_USER
from kubesmith.lab.spec import LAB_RANGE, LabHost, LabSpec

# A loaded 2-core machine booting seven hosts at once has needed more than 90 s.
BOOT_TIMEOUT_S = 180.0
LABEL = "io.kubesmith.lab"
# Directories that must not sit on the container's own overlayfs (LAB.md): containerd cannot
# mount overlays on overlay, kubelet wants a real filesystem. Named volumes keep them, and
# with them the host's data, across container restarts.
VOLUME_PATHS = ("/var/lib/containerd", "/var/lib/kubelet")


@dataclass(frozen=True)
class HostState:
    """What docker and the host itself say about one lab host."""

    host: LabHost
    container: str
    status: str
    systemd: str
    ssh: bool


def state_dir() -> Path:
    return Path(os.environ.get("KUBESMITH_LAB_STATE", "/var/lib/kubesmith-lab"))


def ssh_key_path() -> Path:
    return state_dir() / "ssh" / "id_ed25519"


def ensure_ssh_key() -> Path:
    key = ssh_key_path()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kubesmith-lab", "-f", str(key)])
    return key


def ensure_blackhole() -> None:
    """Keep lab-range packets on this machine whether or not the lab is up."""
    run(["ip", "route", "replace", "blackhole", str(LAB_RANGE)])


def _volume_name(spec: LabSpec, host: LabHost, path: str) -> str:
    return f"{spec.container_name(host)}{path.replace('/', '-')}"


def ensure_network(spec: LabSpec) -> None:
    inspect = run(["docker", "network", "inspect", spec.network_name], check=False)
    if inspect.returncode == 0:
        configs = json.loads(inspect.stdout)[0]["IPAM"]["Config"]
        subnets = {c.get("Subnet") for c in configs}
        if str(spec.subnet) not in subnets:
            raise LabError(
                f"docker network {spec.network_name} exists with subnet {sorted(subnets)}, not "
                f"{spec.subnet}; run `kubesmith-lab down` for this inventory first"
            )
        return
    _refuse_clash(spec)
    run(
        [
            "docker",
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            str(spec.subnet),
            "--gateway",
            str(spec.gateway),
            "--label",
            f"{LABEL}={spec.name}",
            spec.network_name,
        ]
    )


def _refuse_clash(spec: LabSpec) -> None:
    names = run(["docker", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
    for name in names:
        network = json.loads(run(["docker", "network", "inspect", name]).stdout)[0]
        configs = network["IPAM"]["Config"]
        for config in configs or []:
            subnet = config.get("Subnet", "")
            if ":" in subnet or not subnet:
                continue
            if ipaddress.IPv4Network(subnet).overlaps(spec.subnet):
                raise LabError(
                    f"kubesmith_lab_subnet={spec.subnet} clashes with docker network {name} "
                    f"({subnet}); choose another subnet or remove that network"
                )


def _container_info(name: str) -> dict[str, object] | None:
    result = run(["docker", "container", "inspect", name], check=False)
    if result.returncode != 0:
        return None
    info: dict[str, object] = json.loads(result.stdout)[0]
    return info


def _run_container(spec: LabSpec, host: LabHost, image: str) -> None:
    volumes: list[str] = []
    for path in VOLUME_PATHS:
        volumes += ["-v", f"{_volume_name(spec, host, path)}:{path}"]
    run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            spec.container_name(host),
            "--hostname",
            host.name,
            "--network",
            spec.network_name,
            "--ip",
            str(host.ip),
            "--label",
            f"{LABEL}={spec.name}",
            "--label",
            f"{LABEL}.host={host.name}",
            # The flags LAB.md verified: --privileged fails here (CAP_SYS_RESOURCE is outside the
            # bounding set); systempaths=unconfined is what makes /proc/sys writable.
            "--cap-add",
            "ALL",
            "--cap-drop",
            "SYS_RESOURCE",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--security-opt",
            "systempaths=unconfined",
            "--device-cgroup-rule",
            "a *:* rwm",
            "--cgroupns=host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            # systemd as PID 1 shuts down cleanly on SIGRTMIN+3, not on docker's default SIGTERM.
            "--stop-signal",
            "SIGRTMIN+3",
            *volumes,
            image,
            "/sbin/init",
        ]
    )


def ensure_container(spec: LabSpec, host: LabHost, image: str) -> str:
    """Create or start the host's container; return what was done."""
    name = spec.container_name(host)
    info = _container_info(name)
    if info is None:
        _run_container(spec, host, image)
        return "created"
    state = info.get("State", {})
    if isinstance(state, dict) and state.get("Paused"):
        run(["docker", "unpause", name])
        return "unpaused"
    if isinstance(state, dict) and not state.get("Running"):
        run(["docker", "start", name])
        return "started"
    return "running"


def _systemd_state(container: str) -> str:
    result = run(["docker", "exec", container, "systemctl", "is-system-running"], check=False)
    return result.stdout.strip() or "unknown"


def wait_booted(container: str) -> str:
    """Wait until systemd has finished booting (running, or degraded by a failed unit)."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    state = "unknown"
    while time.monotonic() < deadline:
        state = _systemd_state(container)
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    raise LabError(
        f"{container}: systemd did not finish booting in {BOOT_TIMEOUT_S:.0f} s ({state})"
    )


def install_ssh_key(container: str, public_key: str) -> None:
    home = f"/home/{SSH_USER}"
    script = (
        f"install -d -m 0700 -o {SSH_USER} -g {SSH_USER} {home}/.ssh && "
        f"printf '%s\\n' \"$1\" > {home}/.ssh/authorized_keys && "
        f"chown {SSH_USER}:{SSH_USER} {home}/.ssh/authorized_keys && "
        f"chmod 0600 {home}/.ssh/authorized_keys"
    )
    run(["docker", "exec", container, "sh", "-c", script, "sh", public_key])


def ssh_port_open(ip: ipaddress.IPv4Address, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((str(ip), 22), timeout=timeout):
            return True
    except OSError:
        return False


def wait_ssh(host: LabHost) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if ssh_port_open(host.ip):
            return
        time.sleep(0.3)
    raise LabError(f"{host.name}: sshd on {host.ip}:22 did not answer in {BOOT_TIMEOUT_S:.0f} s")


def bring_up(spec: LabSpec, host: LabHost, image: str, public_key: str) -> str:
    action = ensure_container(spec, host, image)
    container = spec.container_name(host)
    wait_booted(container)
    install_ssh_key(container, public_key)
    wait_ssh(host)
    return action


def up_all(spec: LabSpec, image: str) -> dict[str, str]:
    public_key = Path(f"{ensure_ssh_key()}.pub").read_text().strip()
    ensure_network(spec)
    with ThreadPoolExecutor(max_workers=len(spec.hosts)) as pool:
        futures = {h.name: pool.submit(bring_up, spec, h, image, public_key) for h in spec.hosts}
        return {name: future.result() for name, future in futures.items()}


def down_all(spec: LabSpec) -> list[str]:
    removed = []
    for host in spec.hosts:
        name = spec.container_name(host)
        if _container_info(name) is not None:
            run(["docker", "rm", "-f", "-v", name])
            removed.append(host.name)
        for path in VOLUME_PATHS:
            run(["docker", "volume", "rm", "-f", _volume_name(spec, host, path)], check=False)
    if run(["docker", "network", "inspect", spec.network_name], check=False).returncode == 0:
        run(["docker", "network", "rm", spec.network_name])
    return removed


def host_state(spec: LabSpec, host: LabHost) -> HostState:
    container = spec.container_name(host)
    info = _container_info(container)
    if info is None:
        return HostState(host, container, "absent", "-", False)
    state = info.get("State", {})
    status = str(state.get("Status", "unknown")) if isinstance(state, dict) else "unknown"
    running = status == "running"
    systemd = _systemd_state(container) if running else "-"
    return HostState(host, container, status, systemd, running and ssh_port_open(host.ip))


def docker_action(spec: LabSpec, host_name: str, action: str) -> None:
    """pause/unpause/stop/start/restart/kill one host, e.g. to fail over a VIP holder."""
    host = spec.host(host_name)
    run(["docker", action, spec.container_name(host)])


def ssh_argv(spec: LabSpec, host_name: str, command: list[str]) -> list[str]:
    host = spec.host(host_name)
    return [
        "ssh",
        "-i",
        str(ssh_key_path()),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        f"{spec.ssh_user}@{host.ip}",
        *command,
    ]


def exec_ssh(spec: LabSpec, host_name: str, command: list[str]) -> int:
    return subprocess.call(ssh_argv(spec, host_name, command))
