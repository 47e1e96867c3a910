"""Released folder layout round trips and the encoder lookup, all offline."""

import json

import pytest
import torch

from medharness.errors import UserError
from medharness.models.dragonfly.configuration import DragonflyConfig
from medharness.models.dragonfly.modeling import DragonflyForCausalLM
from medharness.models.dragonfly.processing import DragonflyProcessor, format_prompt
from medharness.models.dragonfly.tiny import save_checkpoint


@pytest.mark.parametrize("generation,weights", [(1, "bin"), (2, "sharded-bin"), (2, "safetensors")])
def test_round_trip_through_released_layout(tiny, random_image, tmp_path, generation, weights):
    model, processor = tiny[generation]
    folder = save_checkpoint(model, processor, tmp_path / "ckpt", weights=weights)
    names = {p.name for p in folder.iterdir()}
    expected = {"bin": {"pytorch_model.bin"}, "safetensors": {"model.safetensors"},
                "sharded-bin": {"pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json"}}
    assert expected[weights] <= names and {"tokenizer.json", "preprocessor_config.json", "config.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "dragonfly" and config["architectures"] == ["DragonflyForCausalLM"]
    assert "vision_config" not in config and config["image_encoder"] == "clip-encoder"  # relative path

    loaded = DragonflyForCausalLM.from_pretrained(str(folder), weights_only=True).eval()
    again = DragonflyProcessor.from_pretrained(folder)
    inputs = processor([format_prompt("What is shown?")], [random_image(40, 50, 4)])
    assert torch.equal(again([format_prompt("What is shown?")], [random_image(40, 50, 4)])["input_ids"], inputs["input_ids"])
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_released_config_fields_resolve_without_network():
    released = {
        "architectures": ["DragonflyForCausalLM"], "model_type": "dragonfly",
        "image_encoder": "openai/clip-vit-large-patch14-336", "hidden_size": 4096,
        "image_size": 300, "patch_size": 30, "num_channels": 3, "text_pretrained_model_name_or_path": "meta-llama/x",
        "text_config": {"model_type": "llama", "bos_token_id": 128000, "eos_token_id": 128001, "hidden_size": 4096,
                        "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                        "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "vocab_size": 128256,
                        "max_position_embeddings": 8192},
    }
    config = DragonflyConfig(**released)
    assert config.dragonfly_generation == 2 and config.vision_config.hidden_size == 1024
    assert config.vision_config.patch_size == 14 and config.vision_config.num_hidden_layers == 24
    assert config.text_config.rope_parameters["rope_theta"] == 500000.0
    assert config.image_placeholder_id is None  # a released config.json has none: from the tokenizer
    gen1 = DragonflyConfig(**{**released, "image_encoder": "openai/clip-vit-base-patch32"})
    assert gen1.dragonfly_generation == 1 and gen1.vision_config.image_size == 224


def test_unknown_encoder_offline_is_one_clear_line(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "dragonfly", "image_encoder": "someone/not-cached-clip",
        "text_config": {"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2},
    }))
    with pytest.raises(UserError, match="cannot find the CLIP encoder config 'someone/not-cached-clip'"):
        DragonflyConfig.from_pretrained(str(folder))
