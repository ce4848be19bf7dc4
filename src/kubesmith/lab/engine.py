"""The docker engine and the host tools the lab needs, installed and started on demand."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from kubesmith.lab.errors import LabError

ENGINE_START_TIMEOUT_S = 60.0


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (docker engine, routes, debootstrap); run it as root or with sudo"
        )


def run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command; with check, a failure becomes a LabError carrying its stderr."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise LabError(f"{' '.join(argv[:4])} failed (exit {result.returncode}): {detail}")
    return result


def apt_install(*packages: str) -> None:
    """Install Debian packages, refreshing the package lists once if needed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False, env=env)
        result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise LabError(
            f"could not install {', '.join(packages)} with apt-get: {result.stderr.strip()}; "
            "install them by hand and run again"
        )


def ensure_tool(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        print(f"lab: installing {package} (for {binary})", flush=True)
        apt_install(package)
    if shutil.which(binary) is None:
        raise LabError(f"{binary} is still missing after installing {package}")


def engine_running() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def ensure_engine(state_dir: Path) -> None:
    """Start a docker engine if none answers, installing Debian's docker.io if needed."""
    if shutil.which("docker") is None:
        ensure_tool("docker", "docker.io")
    if engine_running():
        return
    if shutil.which("dockerd") is None:
        print("lab: installing docker.io (the docker engine)", flush=True)
        apt_install("docker.io")
    if shutil.which("dockerd") is None:
        raise LabError("docker is missing and docker.io did not provide dockerd")
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "dockerd.log"
    print(f"lab: starting dockerd (log: {log_path})", flush=True)
    with log_path.open("ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if engine_running():
            return
        time.sleep(0.5)
    raise LabError(f"dockerd did not answer within {ENGINE_START_TIMEOUT_S:.0f} s; see {log_path}")
