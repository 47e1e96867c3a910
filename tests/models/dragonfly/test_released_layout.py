"""Checkpoint folders exactly as released: config.json with only the reference's keys, a
tokenizer whose special-token ids are not Llama-3's, one pickled file or bf16 shards, the CLIP
folder with its legacy preprocessor config. Loading, the rotary option and host memory."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from medharness.models.dragonfly import loading
from medharness.models.dragonfly.modeling import DragonflyForCausalLM
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import RELEASED_TOP_LEVEL, save_checkpoint
from medharness.cli import main
from tests.core.helpers import cli, jsonl_fixture, load_run, model_card, run_dirs

def run_in_process(*args: str) -> None:
    """`medharness run ...` in this process (the tiny models are already built here)."""
    with pytest.raises(SystemExit) as done:
        main(["run", *args, "--quiet"])
    assert done.value.code == 0


LAYOUTS = [(1, "bin", torch.float32), (1, "sharded-bin", torch.bfloat16), (2, "bin", torch.float32), (2, "sharded-bin", torch.bfloat16)]
REFERENCE_KEYS = set(RELEASED_TOP_LEVEL) | {
    "architectures", "model_type", "image_encoder", "image_size", "patch_size", "num_channels", "rope_scaling",
    "text_pretrained_model_name_or_path", "text_config", "torch_dtype", "transformers_version",
}


@pytest.fixture(scope="module")
def released(tiny, tmp_path_factory):
    """(generation, weights) -> a folder in the released layout."""
    root = tmp_path_factory.mktemp("released")
    return {(g, w): save_checkpoint(*tiny[g], root / f"gen{g}-{w}", weights=w, dtype=d) for g, w, d in LAYOUTS}


@pytest.mark.parametrize("generation,weights,dtype", LAYOUTS)
def test_released_folder_loads_with_ids_from_the_tokenizer(tiny, released, random_image, generation, weights, dtype):
    folder = released[generation, weights]
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == REFERENCE_KEYS  # nothing of ours: no generation, vision_config or token ids
    legacy = json.loads((folder / "clip-encoder" / "preprocessor_config.json").read_text())
    assert legacy["feature_extractor_type"] == "CLIPFeatureExtractor" and isinstance(legacy["crop_size"], int)
    if weights == "sharded-bin":
        index = json.loads((folder / "pytorch_model.bin.index.json").read_text())
        assert len(set(index["weight_map"].values())) == 2
        shard = torch.load(folder / "pytorch_model-00001-of-00002.bin", weights_only=True)
        assert {v.dtype for v in shard.values()} == {torch.bfloat16}

    processor = DragonflyProcessor.from_pretrained(folder)
    model = DragonflyForCausalLM.from_pretrained(str(folder), dtype=dtype, weights_only=True).eval()
    if dtype == torch.bfloat16:  # the reference's bf16 path: the option rounds as `.to(torch.bfloat16)` does
        model, _ = loading.load(folder, torch.device("cpu"), dtype, rotary_dtype="bfloat16")
    assert processor.placeholder_id == model.config.image_placeholder_id != 128002  # not Llama-3's id
    assert model.config.dragonfly_generation == generation and model.dtype == dtype
    source, source_processor = tiny[generation]
    prompt, image = format_prompt("What is shown?"), random_image(50, 40, 7)
    inputs = processor([prompt], [image])
    assert torch.equal(inputs["input_ids"], source_processor([prompt], [image])["input_ids"])
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    with torch.no_grad():
        expected = copy.deepcopy(source).to(dtype)(**inputs).logits
        assert torch.equal(model(**inputs).logits, expected)


def test_run_with_cards_whose_weights_are_released_folders(released, tmp_path):
    data = jsonl_fixture(tmp_path / "data")
    cards = [model_card(tmp_path / f"df-gen{g}-{w}.yaml", adapter="dragonfly", weights=str(released[g, w]), device="cpu",
                        dtype="bfloat16" if w == "sharded-bin" else "float32", options={"rotary_dtype": "bfloat16"})
             for g, w, _ in LAYOUTS]
    results = tmp_path / "results"
    run_in_process("--task", "custom-jsonl", "--model", ",".join(str(c) for c in cards), "--data-dir", str(data),
                   "--results", str(results), "--limit", "2", "--max-new-tokens", "2")
    runs = run_dirs(results)
    assert len(runs) == 4
    for run_dir in runs:
        record, samples = load_run(run_dir)
        assert record["status"] == "complete" and len(samples) == 2
        assert all(s.visual_tokens > 0 and "cost" in s.extra for s in samples)


def test_selection_and_levels_sweep_into_runs(tmp_path):
    data = jsonl_fixture(tmp_path / "data")
    results = tmp_path / "results"
    run_in_process("--task", "custom-jsonl", "--model", "dragonfly-tiny-v1", "--data-dir", str(data), "--results",
                   str(results), "--limit", "1", "--max-new-tokens", "2", "--selection", "random,first", "--levels",
                   "low+medium+high", "--seed", "3")
    runs = run_dirs(results)
    assert sorted(r.name.split("__")[1] for r in runs) == [
        "dragonfly-tiny-v1-first-low+medium+high", "dragonfly-tiny-v1-random-low+medium+high"]
    settings = sorted((load_run(r)[0]["spec"]["generation"] for r in runs), key=lambda g: g["selection"])
    assert [(g["selection"], g["levels"], g["seed"]) for g in settings] == [
        ("first", "low+medium+high", None), ("random", "low+medium+high", 3)]


def test_bad_selection_on_the_command_line_is_one_line(tmp_path):
    proc = cli("run", "--task", "custom-jsonl", "--model", "dragonfly-tiny-v1", "--selection", "best")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "--selection: 'best' is not one of similarity, random, first, none" in proc.stderr


def rope_445(base: float, dim: int) -> torch.Tensor:
    """transformers 4.45's LlamaRotaryEmbedding inv_freq, then `.to(torch.bfloat16)` as the
    reference's `model.to(torch.bfloat16)` does, then the forward's `.float()`."""
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    return inv_freq.to(torch.bfloat16).float()


def test_rotary_dtype_rounds_like_the_reference_and_only_in_bf16(released, random_image):
    folder = released[2, "bin"]
    text = DragonflyForCausalLM.from_pretrained(str(folder), weights_only=True).config.text_config
    dim = text.hidden_size // text.num_attention_heads
    models = {(dtype, rotary): loading.load(folder, torch.device("cpu"), dtype, "sdpa", rotary)
              for dtype in (torch.float32, torch.bfloat16) for rotary in ("float32", "bfloat16")}
    rotary = models[torch.bfloat16, "bfloat16"][0].language_model.model.rotary_emb
    assert torch.equal(rotary.inv_freq, rope_445(text.rope_parameters["rope_theta"], dim))
    assert not torch.equal(models[torch.bfloat16, "float32"][0].language_model.model.rotary_emb.inv_freq, rotary.inv_freq)
    processor = models[torch.float32, "float32"][1]
    inputs = processor([format_prompt("Is there a mass in the upper lobe?")], [random_image(60, 45, 3)])
    logits = {}
    with torch.no_grad():
        for (dtype, name), (model, _) in models.items():
            logits[dtype, name] = model(**{**inputs, "pixel_values": inputs["pixel_values"].to(dtype)}).logits
    assert torch.equal(logits[torch.float32, "bfloat16"], logits[torch.float32, "float32"])  # fp32: no effect
    assert not torch.equal(logits[torch.bfloat16, "bfloat16"], logits[torch.bfloat16, "float32"])


MEASURE = """
import resource, sys, torch
from medharness.models.dragonfly import loading
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model, _ = loading.load(sys.argv[1], torch.device("cpu"), torch.bfloat16)
touched = sum(float(p.float().sum()) for p in model.parameters())  # every weight resident
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_host_memory_peak_is_well_under_twice_the_bf16_weights(tmp_path):
    from transformers import CLIPVisionConfig

    from medharness.models.dragonfly.configuration import DragonflyConfig
    from medharness.models.dragonfly.image_processing import DragonflyImageProcessor
    from medharness.models.dragonfly.tiny import TINY_VISION, build_tokenizer

    tokenizer = build_tokenizer()
    text = dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = DragonflyConfig(text_config=text, vision_config=CLIPVisionConfig(**TINY_VISION[2]).to_dict(),
                             image_encoder="clip-encoder", image_placeholder_id=2)
    with torch.device("meta"):  # uninitialised weights: the values do not matter here, and init is slow
        model = DragonflyForCausalLM(config)
    model = model.to_empty(device="cpu")
    weights = sum(v.numel() * 2 for v in model.state_dict().values())
    folder = save_checkpoint(model, DragonflyProcessor(tokenizer, DragonflyImageProcessor(32, 2), config),
                             tmp_path / "small", weights="sharded-bin", dtype=torch.bfloat16)
    del model
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True, check=True)
    growth = int(out.stdout.split()[-1])
    assert weights > 40e6 and growth < 1.5 * weights, (growth, weights)
