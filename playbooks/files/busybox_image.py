"""Build the lab's verify image: Debian's static busybox as a one-layer OCI archive.

The lab has no registry, so 90-verify.yml's workload image is made from a Debian package:
    python busybox_image.py BUSYBOX_BINARY REF OUTPUT
Prints the archive's sha256. Same binary and ref give the same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from kubesmith.bundle.oci import ImageSpec, write_image_archive


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: busybox_image.py BUSYBOX_BINARY REF OUTPUT", file=sys.stderr)
        return 2
    binary, ref, output = Path(argv[0]), argv[1], Path(argv[2])
    spec = ImageSpec(
        ref=ref,
        files={"/bin/busybox": binary},
        entrypoint=["/bin/busybox"],
        arch="amd64",
        created=int(binary.stat().st_mtime),
        empty_dirs={"/tmp": 0o1777, "/www": 0o755},
    )
    print(write_image_archive(spec, output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
