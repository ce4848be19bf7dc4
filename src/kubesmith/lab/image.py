"""The lab host image: Debian bookworm with systemd and sshd, built once with debootstrap."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from kubesmith.lab.engine import ensure_tool, run
from kubesmith.lab.errors import LabError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "iputils-ping",
    "openssh-server",
    "python3",
    "sudo",
    "procps",
    "ca-certificates",
    "kmod",
)
IMAGE_REPO = "kubesmith-lab/debian"
SSH_USER = "kubesmith"

# Files laid into the root tree after debootstrap: path -> content. Each one is why a
# plain debootstrap tree does not behave like a server when systemd runs in a container.
FILES: dict[str, str] = {
    "etc/apt/sources.list": (
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
    ),
    # Fresh host keys per container: the image ships none, sshd makes them on first start.
    "etc/systemd/system/ssh.service.d/hostkeys.conf": (
        "[Service]\nExecStartPre=\n"
        "ExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
    ),
    f"etc/sudoers.d/{SSH_USER}": f"{SSH_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n",
    # kubelet and containerd need mount propagation and /dev/kmsg, as on a real server.
    "etc/systemd/system/lab-host-setup.service": (
        "[Unit]\nDescription=Make this container behave like a server host (kubesmith lab)\n"
        "DefaultDependencies=no\nBefore=sysinit.target\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
        "ExecStart=/bin/mount --make-rshared /\n"
        # A real character device: a link to /dev/console (absent here) makes kubelet exit.
        "ExecStart=/bin/sh -c "
        "'test -c /dev/kmsg || { rm -f /dev/kmsg; mknod -m 0600 /dev/kmsg c 1 11; }'\n\n"
        "[Install]\nWantedBy=sysinit.target\n"
    ),
    "etc/ssh/sshd_config.d/kubesmith-lab.conf": (
        "PasswordAuthentication no\nPermitRootLogin no\nUseDNS no\n"
    ),
}
# Units that wait for hardware a container does not have.
MASKED_UNITS = (
    "getty.target",
    "console-getty.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-remount-fs.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "systemd-firstboot.service",
)


def recipe_digest() -> str:
    """A short digest of everything that shapes the image; a change means a new tag."""
    recipe = repr((SUITE, MIRROR, PACKAGES, sorted(FILES.items()), MASKED_UNITS, SSH_USER))
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def image_tag() -> str:
    return f"{IMAGE_REPO}:{SUITE}-{recipe_digest()}"


def image_exists(tag: str) -> bool:
    return run(["docker", "image", "inspect", tag], check=False).returncode == 0


def debootstrap(
    root: Path,
    packages: Sequence[str],
    *,
    exclude: Sequence[str] = (),
    suite: str = SUITE,
    mirror: str = MIRROR,
) -> None:
    """A minimal Debian tree in root (which must not exist yet) with packages installed and
    the non-essential packages of exclude left out."""
    ensure_tool("debootstrap", "debootstrap")
    options = ["--variant=minbase", f"--include={','.join(packages)}"]
    if exclude:
        options.append(f"--exclude={','.join(exclude)}")
    result = subprocess.run(
        ["debootstrap", *options, suite, str(root), mirror],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        log_tail = "\n".join(result.stdout.splitlines()[-15:])
        raise LabError(f"debootstrap failed (exit {result.returncode}):\n{log_tail}")


def _customise(root: Path) -> None:
    for rel_path, content in FILES.items():
        target = root / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (root / f"etc/sudoers.d/{SSH_USER}").chmod(0o440)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    setup_link = wants / "lab-host-setup.service"
    if not setup_link.exists():
        setup_link.symlink_to("/etc/systemd/system/lab-host-setup.service")
    for unit in MASKED_UNITS:
        mask = root / "etc/systemd/system" / unit
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").unlink(missing_ok=True)
    run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", SSH_USER])
    run(["chroot", str(root), "apt-get", "clean"])


def _import_tree(root: Path, tag: str) -> None:
    """Stream the root tree into docker as an image, without a temporary tarball."""
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    # docker 20.10's import refuses STOPSIGNAL as a change; hosts.py passes --stop-signal.
    importer = subprocess.Popen(
        [
            "docker",
            "import",
            "--change",
            'CMD ["/sbin/init"]',
            "--change",
            "ENV container=docker",
            "-",
            tag,
        ],
        stdin=tar.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tar.stdout is not None
    # Our copy of the pipe must go, or tar blocks forever when the importer dies early.
    tar.stdout.close()
    _, stderr = importer.communicate()
    tar_rc = tar.wait()
    if importer.returncode != 0 or tar_rc != 0:
        raise LabError(
            f"docker import of the host image failed: {stderr.strip()} (tar exit {tar_rc})"
        )


def build_image(work_dir: Path) -> str:
    """Build the host image unless this recipe's tag already exists; return the tag."""
    tag = image_tag()
    if image_exists(tag):
        return tag
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="rootfs-") as tmp:
        root = Path(tmp) / "root"
        print(f"lab: building host image {tag} with debootstrap (about 1-2 minutes)", flush=True)
        debootstrap(root, PACKAGES)
        _customise(root)
        _import_tree(root, tag)
        shutil.rmtree(root, ignore_errors=True)
    print(f"lab: host image {tag} built in {time.monotonic() - started:.0f} s", flush=True)
    return tag
