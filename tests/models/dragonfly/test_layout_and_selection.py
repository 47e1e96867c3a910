"""Token layout of the image span and the zoom-in selection rule."""

import pytest
import torch

from medharness.errors import UserError
from medharness.models.dragonfly.configuration import ALL_LEVELS, CropPlan, kept_high_crops
from medharness.models.dragonfly.modeling import image_embeddings, pool_crops, select_high_crops
from medharness.models.dragonfly.processing import block_sizes, format_prompt, image_span


@pytest.mark.parametrize("generation,se,patch,kept,visual,positions", [
    (1, 224, 32, 12, 850, 867),  # 17 blocks x (50 + 1)
    (2, 336, 14, 36, 2057, 2098),  # 578 + 40 x 38
    (1, 224, 32, 24, 29 * 50, 29 * 51),
    (1, 224, 32, 6, 11 * 50, 11 * 51),
    (2, 336, 14, 9, 577 + 13 * 37, 578 + 13 * 38),
])
def test_released_span_sizes(generation, se, patch, kept, visual, positions):
    sizes = block_sizes(generation, se, patch, kept)
    assert sum(sizes) == visual
    span = image_span(sizes, 7, 8)
    assert len(span) == positions
    assert span.count(8) == len(sizes) and span[-1] == 8 and span[sizes[0]] == 8


@pytest.mark.parametrize("generation,ratio,kept", [
    (1, None, 12), (1, 0.5, 12), (1, 0.25, 6), (1, 0.75, 18), (1, 1.0, 24), (1, 4 / 24, 4),
    (2, None, 36), (2, 0.25, 9), (2, 0.5, 18), (2, 1.0, 36), (1, 0.1875, 5),  # 4.5 rounds up
])
def test_kept_high_crops(generation, ratio, kept):
    assert kept_high_crops(generation, ratio) == kept


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.5])
def test_selection_ratio_out_of_range(ratio):
    with pytest.raises(UserError, match=r"outside \(0, 1\]"):
        kept_high_crops(1, ratio)


def test_selection_hand_checked():
    # 8 high crops, 4 regions of 2; scores = query . region: make query i score i+1 on its own
    # region by putting the regions on the axes.
    regions = torch.eye(4)
    queries = torch.zeros(8, 4)
    for i in range(8):
        queries[i, i // 2] = [5, 1, 2, 6, 3, 4, 8, 7][i]
    assert select_high_crops(queries, regions, 4).tolist() == [0, 3, 5, 6]  # best of each pair
    assert select_high_crops(queries, regions, 5).tolist() == [0, 3, 5, 6, 7]  # + best leftover (7)
    assert select_high_crops(queries, regions, 2).tolist() == [6, 7]  # 0 per region, 2 best overall
    assert select_high_crops(queries, regions, 8).tolist() == list(range(8))


@pytest.mark.parametrize("n,kept", [(24, k) for k in range(1, 25)] + [(36, 9), (36, 27), (36, 36)])
def test_selection_invariants(n, kept):
    gen = torch.Generator().manual_seed(n * 100 + kept)
    queries, regions = torch.randn(n, 16, generator=gen), torch.randn(4, 16, generator=gen)
    index = select_high_crops(queries, regions, kept)
    assert index.numel() == kept == len(set(index.tolist()))
    assert index.tolist() == sorted(index.tolist())
    block = n // 4
    per_block = [sum(1 for i in index.tolist() if i // block == m) for m in range(4)]
    assert all(c >= kept // 4 for c in per_block)
    # each block's choice is its own top scorers against its own region
    for m in range(4):
        scores = queries[m * block : (m + 1) * block] @ regions[m]
        top = set((torch.topk(scores, kept // 4).indices + m * block).tolist()) if kept // 4 else set()
        assert top <= set(index.tolist())


def test_gen1_embeddings_keep_all_at_full_ratio_and_order():
    projected = torch.randn(29, 50, 8)
    full = image_embeddings(projected, 1, CropPlan(ALL_LEVELS, "none", 24))
    assert torch.equal(full, projected.reshape(-1, 8))
    half = image_embeddings(projected, 1, CropPlan(ALL_LEVELS, "similarity", 12))
    assert half.shape == (17 * 50, 8)
    assert torch.equal(half[: 5 * 50], projected[:5].reshape(-1, 8))


def test_gen2_pooling_is_cls_plus_mean_of_4x4_cells():
    crops = torch.randn(2, 1 + 24 * 24, 3)
    pooled = pool_crops(crops)
    assert pooled.shape == (2, 37, 3)
    assert torch.equal(pooled[:, 0], crops[:, 0])
    grid = crops[1, 1:].view(24, 24, 3)
    assert torch.allclose(pooled[1, 1 + 6 + 2], grid[4:8, 8:12].mean((0, 1)), atol=1e-6)  # cell row 1, col 2


def test_prompt_template():
    assert format_prompt("Is it red?") == (
        "<|start_header_id|>user<|end_header_id|>\n\nIs it red?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_processor_layout_left_padding_and_text_only(tiny, random_image):
    _, processor = tiny[1]
    prompts = [format_prompt("What organ is shown?"), format_prompt("Is it normal?"), format_prompt("no image here")]
    inputs = processor(prompts, [random_image(40, 30), random_image(30, 40, 1), None])
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    assert inputs["pixel_values"].shape == (2, 29, 3, 224, 224)
    span = processor.span_ids()
    bos = processor.tokenizer.bos_token_id
    for row in range(2):
        real = ids[row][mask[row].bool()].tolist()
        assert real[: len(span)] == span and real[len(span)] == bos
        assert real[len(span) + 1 :] == processor.tokenizer(prompts[row], add_special_tokens=False)["input_ids"]
    text_only = ids[2][mask[2].bool()].tolist()
    assert text_only[0] == bos and processor.placeholder_id not in text_only
    assert mask[2, 0] == 0 and ids[2, 0] == processor.tokenizer.eos_token_id  # padded on the left with EOS
    assert processor.visual_tokens() == 17 * 50 and processor.visual_tokens(1.0) == 29 * 50
