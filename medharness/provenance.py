"""What produced a run: git commit, package versions, fingerprints of data and specs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from medharness.schema import Sample

PACKAGES = ("medharness", "torch", "transformers", "numpy", "pillow", "pycocoevalcap", "scikit-learn", "pydantic")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> Optional[str]:
    """The commit of the source checkout, with "-dirty" when it has uncommitted changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def digest(value: Any, length: int = 16) -> str:
    blob = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def data_fingerprint(samples: Sequence["Sample"]) -> str:
    """What identifies the evaluated (or training) data: ids, questions, answers, images."""
    return digest([
        (s.id, s.question, s.references, s.answer_type, s.choices,
         [(i.path or hashlib.sha256(i.data or b"").hexdigest()) + (f"#{i.view.model_dump_json()}" if i.view else "")
          for i in s.images])  # a DICOM / NIfTI view is part of the data
        for s in samples
    ])
