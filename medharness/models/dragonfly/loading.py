"""Where a card's weights are, what identifies them, and loading model + processor from there."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Optional

from medharness.errors import UserError
from medharness.schema import ModelCard

WEIGHT_PATTERNS = ("*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.tiktoken")


def checkpoint_folder(card: ModelCard) -> Path:
    """The local folder holding the card's checkpoint: a tiny build, a folder, or a hub snapshot."""
    tiny = card.options.get("tiny")
    if tiny is not None:
        from medharness.models.dragonfly.tiny import tiny_checkpoint

        return tiny_checkpoint({"gen1": 1, "gen2": 2}[tiny])  # DragonflyOptions allows only these
    if not card.weights:
        raise UserError(f"model card {card.name!r} names no weights; set `weights:` to a hub id or a local folder")
    local = Path(os.path.expanduser(card.weights))
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise UserError(f"{local} has no config.json; point `weights:` at a Dragonfly checkpoint folder")
        return local
    return hub_snapshot(card.weights, card.revision)


def hub_snapshot(repo_id: str, revision: Optional[str]) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True, allow_patterns=list(WEIGHT_PATTERNS)))
    except Exception:  # not in the local cache
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise UserError(
            f"weights {repo_id!r} are not downloaded and the hub is offline; run "
            f"`hf download {repo_id}` while online, or set `weights:` to a local checkpoint folder"
        )
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(WEIGHT_PATTERNS)))
    except Exception as exc:
        raise UserError(
            f"cannot download {repo_id!r} ({type(exc).__name__}); check the id and your access, "
            "or set `weights:` to a local checkpoint folder"
        ) from None


def weights_identity(folder: Path) -> str:
    """A digest of the checkpoint's config and weight files (names, sizes, and the index or
    safetensors headers), cheap enough to take on every run."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}:{path.stat().st_size}\n".encode())
        if path.suffix == ".json":
            digest.update(path.read_bytes())
        elif path.suffix in (".safetensors", ".bin"):
            with open(path, "rb") as handle:  # the head holds the safetensors header / pickle index
                digest.update(handle.read(1 << 16))
    return digest.hexdigest()[:16]


def load(folder: Path, device: Any, dtype: Any, attn_implementation: str = "sdpa") -> tuple[Any, Any]:
    """(model in eval mode on `device`, processor) from a checkpoint folder."""
    from medharness.models.dragonfly.modeling import DragonflyForCausalLM
    from medharness.models.dragonfly.processing import DragonflyProcessor

    model = DragonflyForCausalLM.from_pretrained(
        str(folder), dtype=dtype, attn_implementation=attn_implementation, weights_only=True,
    )
    return model.to(device).eval(), DragonflyProcessor.from_pretrained(folder)
