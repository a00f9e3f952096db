"""Where the third-party development data live (never inside the package or the repo).

``PDFSG_SHARED_DATA`` names the folder; by default it is ``../shared/data`` beside the
project checkout (or beside the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """The shared data folder, or None when it does not exist."""
    env = os.environ.get("PDFSG_SHARED_DATA")
    candidates = [Path(env)] if env else []
    repo_root = Path(__file__).resolve().parents[2]
    candidates += [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None
