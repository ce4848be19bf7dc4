"""Does a running service execute the binary installed for it now?

After an upgrade the links in /usr/local/bin point into the new version's directory while the
process still runs the old version's file (or a file replaced in place, which the kernel shows
as '<path> (deleted)'). Such a service is stale: it must restart to run what is installed.
One implementation for the module kubesmith.cluster.service_binaries; read-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

DELETED_SUFFIX = " (deleted)"
# systemctl show PROPERTY=value lines the check reads.
SHOW_PROPERTIES = ("LoadState", "ActiveState", "MainPID")

# Runs `systemctl show` for one unit and returns its stdout; raises ServiceBinaryError.
ShowUnit = Callable[[str], str]


class ServiceBinaryError(ValueError):
    """Bad input or an unreadable system state; the message names the service and the fix."""


@dataclass
class ServiceBinary:
    """What one service runs compared with what is installed."""

    service: str
    binary: str
    loaded: bool
    active: bool
    main_pid: int
    running_path: str | None
    deleted: bool
    binary_path: str
    binary_exists: bool
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def requested(items: Any) -> list[tuple[str, str]]:
    """(service, binary) pairs from the module's `services` option, validated."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ServiceBinaryError(f"services: expected a list of {{service, binary}}, got {items!r}")
    pairs = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ServiceBinaryError(
                f"services[{position}]: expected a mapping {{service, binary}}, got {item!r}"
            )
        service, binary = item.get("service"), item.get("binary")
        if not isinstance(service, str) or not service.strip():
            raise ServiceBinaryError(
                f"services[{position}].service: expected a unit name like kubelet, got {service!r}"
            )
        if not isinstance(binary, str) or not os.path.isabs(binary):
            raise ServiceBinaryError(
                f"services[{position}].binary: expected an absolute path like "
                f"/usr/local/bin/kubelet, got {binary!r}"
            )
        pairs.append((service.strip(), binary))
    return pairs


def parse_show(output: str, service: str) -> dict[str, str]:
    """The PROPERTY=value lines of `systemctl show`; every property in SHOW_PROPERTIES."""
    properties = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key.strip()] = value.strip()
    missing = [name for name in SHOW_PROPERTIES if name not in properties]
    if missing:
        raise ServiceBinaryError(
            f"{service}: systemctl show did not report {', '.join(missing)} "
            f"(output {output.strip()!r})"
        )
    if not properties["MainPID"].isdigit():
        raise ServiceBinaryError(
            f"{service}: systemctl show reports MainPID={properties['MainPID']!r}, not a number"
        )
    return properties


def split_deleted(link: str) -> tuple[str, bool]:
    """The path of /proc/<pid>/exe without the kernel's ' (deleted)' mark, and whether it had it."""
    if link.endswith(DELETED_SUFFIX):
        return link[: -len(DELETED_SUFFIX)], True
    return link, False


class ServiceBinaries:
    """Compares each service's running executable with its installed binary.

    show_unit runs `systemctl show`; proc_root is /proc (tests point it at a fake tree).
    """

    def __init__(self, show_unit: ShowUnit, proc_root: str = "/proc") -> None:
        self.show_unit = show_unit
        self.proc_root = proc_root

    def running_exe(self, service: str, pid: int) -> tuple[str | None, bool]:
        """Resolved path of the process's executable and whether that file was deleted.

        (None, False) when the process exited between `systemctl show` and this read.
        """
        exe = os.path.join(self.proc_root, str(pid), "exe")
        try:
            link = os.readlink(exe)
        except FileNotFoundError:
            return None, False
        except PermissionError as exc:
            raise ServiceBinaryError(
                f"{service}: cannot read {exe} ({exc.strerror}); run the task as root "
                "(become: true)"
            ) from exc
        path, deleted = split_deleted(link)
        return os.path.realpath(path), deleted

    def check(self, service: str, binary: str) -> ServiceBinary:
        properties = parse_show(self.show_unit(service), service)
        loaded = properties["LoadState"] == "loaded"
        active = properties["ActiveState"] == "active"
        pid = int(properties["MainPID"])
        running_path, deleted = self.running_exe(service, pid) if active and pid else (None, False)
        binary_path = os.path.realpath(binary)
        binary_exists = os.path.isfile(binary_path)
        # A missing installed binary is never a reason to restart: the service would not start.
        stale = (
            running_path is not None and binary_exists and (deleted or running_path != binary_path)
        )
        return ServiceBinary(
            service=service,
            binary=binary,
            loaded=loaded,
            active=active,
            main_pid=pid,
            running_path=running_path,
            deleted=deleted,
            binary_path=binary_path,
            binary_exists=binary_exists,
            stale=stale,
        )

    def check_all(self, items: Any) -> list[ServiceBinary]:
        return [self.check(service, binary) for service, binary in requested(items)]


def warnings_for(results: Sequence[ServiceBinary]) -> list[str]:
    """What an operator should hear about without the task failing."""
    return [
        f"{result.service} runs {result.running_path}, but the installed binary "
        f"{result.binary} ({result.binary_path}) does not exist: not restarting it"
        for result in results
        if result.active and result.running_path is not None and not result.binary_exists
    ]
