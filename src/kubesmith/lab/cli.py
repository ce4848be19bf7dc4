"""kubesmith-lab: make an inventory's hosts real as systemd containers reached over SSH."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kubesmith.lab import hosts
from kubesmith.lab.engine import ensure_engine, ensure_tool, require_root
from kubesmith.lab.errors import LabError
from kubesmith.lab.image import build_image
from kubesmith.lab.spec import LabSpec, spec_from_inventory

DEFAULT_INVENTORY = Path("inventory/lab")
HOST_ACTIONS = ("pause", "unpause", "stop", "start", "restart", "kill")


def _prepare(inventory: Path) -> LabSpec:
    require_root()
    spec = spec_from_inventory(inventory)
    ensure_tool("ip", "iproute2")
    hosts.ensure_blackhole()
    ensure_engine(hosts.state_dir())
    return spec


def cmd_up(spec: LabSpec) -> int:
    started = time.monotonic()
    image = build_image(hosts.state_dir() / "image")
    actions = hosts.up_all(spec, image)
    for name, action in sorted(actions.items()):
        host = spec.host(name)
        print(f"{name:<12} {host.ip!s:<15} {action}")
    print(f"lab {spec.name}: {len(actions)} hosts up in {time.monotonic() - started:.1f} s")
    return 0


def cmd_down(spec: LabSpec) -> int:
    started = time.monotonic()
    removed = hosts.down_all(spec)
    print(f"lab {spec.name}: removed {len(removed)} hosts in {time.monotonic() - started:.1f} s")
    return 0


def cmd_status(spec: LabSpec) -> int:
    states = [hosts.host_state(spec, h) for h in spec.hosts]
    print(f"{'HOST':<12} {'IP':<15} {'CONTAINER':<10} {'SYSTEMD':<10} SSH")
    for state in states:
        ssh = "ok" if state.ssh else "-"
        host = state.host
        print(f"{host.name:<12} {host.ip!s:<15} {state.status:<10} {state.systemd:<10} {ssh}")
    ready = all(s.status == "running" and s.ssh for s in states)
    return 0 if ready else 1


def cmd_ssh(spec: LabSpec, host_name: str, command: list[str]) -> int:
    state = hosts.host_state(spec, spec.host(host_name))
    if state.status != "running":
        raise LabError(f"host {host_name} is {state.status}; run `kubesmith-lab up` first")
    return hosts.exec_ssh(spec, host_name, command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubesmith-lab", description=__doc__)
    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=DEFAULT_INVENTORY,
        help="inventory whose hosts the lab makes real (default: inventory/lab)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="create or start every host (idempotent)")
    sub.add_parser("down", help="remove every host, its volumes and the lab network")
    sub.add_parser("status", help="show each host; exit 1 unless all run with sshd up")
    ssh = sub.add_parser("ssh", help="open a shell or run a command on a host over SSH")
    ssh.add_argument("host")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    for action in HOST_ACTIONS:
        one = sub.add_parser(action, help=f"docker {action} one host (failure drills)")
        one.add_argument("host")
    return parser


def dispatch(args: argparse.Namespace) -> int:
    spec = _prepare(args.inventory)
    if args.command == "up":
        return cmd_up(spec)
    if args.command == "down":
        return cmd_down(spec)
    if args.command == "status":
        return cmd_status(spec)
    if args.command == "ssh":
        return cmd_ssh(spec, args.host, args.remote_command)
    hosts.docker_action(spec, args.host, args.command)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except LabError as exc:
        print(f"kubesmith-lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
