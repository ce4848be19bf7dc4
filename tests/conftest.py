"""Test-wide setup: make the repository importable as the collection kubesmith.cluster."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_DIR = REPO_ROOT / ".collections"

if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))
# Shared test helpers are imported as tests.<dir>.<module>, the name mypy gives them too.
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))
