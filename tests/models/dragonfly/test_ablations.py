"""The paper's ablations as settings: selection (similarity, random, first, none) and levels
(low, low+medium, low+medium+high), with the span each gives and the gen-2 spatial regions."""

import pytest
import torch

from medharness.errors import UserError
from medharness.models.dragonfly.configuration import CropPlan, crop_plan
from medharness.models.dragonfly.modeling import ablation_scores, select_high_crops, spatial_regions
from medharness.models.dragonfly.processing import format_prompt

ALL = "low+medium+high"


@pytest.mark.parametrize("generation,ratio,selection,levels,plan", [
    (1, None, None, None, (ALL, "similarity", 12)),  # released gen 1
    (2, None, None, None, (ALL, "none", 36)),  # released gen 2
    (1, 0.25, "random", None, (ALL, "random", 6)),
    (1, None, "first", None, (ALL, "first", 12)),
    (1, None, "none", None, (ALL, "none", 24)),
    (2, 0.25, None, None, (ALL, "similarity", 9)),  # the gen-2 extension
    (2, 0.5, "random", ALL, (ALL, "random", 18)),
    (1, 1.0, "random", None, (ALL, "none", 24)),  # keeping all is no selection
    (1, None, None, "low", ("low", "none", 0)),
    (2, None, "none", "low+medium", ("low+medium", "none", 0)),
])
def test_crop_plans(generation, ratio, selection, levels, plan):
    assert crop_plan(generation, ratio, selection, levels) == CropPlan(*plan)


@pytest.mark.parametrize("generation,ratio,selection,levels,message", [
    (1, 0.5, None, "low", "levels low uses no high-resolution crops"),
    (1, None, "random", "low+medium", "levels low\\+medium uses no high-resolution crops"),
    (1, 0.5, "none", None, "selection none keeps every high crop; selection ratio 0.5 contradicts it"),
    (2, None, "random", None, "generation 2 keeps every high crop unless a selection ratio is given"),
    (1, None, "best", None, "selection 'best' is not one of similarity, random, first, none"),
    (1, None, None, "high", "levels 'high' is not one of low, low\\+medium, low\\+medium\\+high"),
])
def test_contradictory_settings_are_refused(generation, ratio, selection, levels, message):
    with pytest.raises(UserError, match=message):
        crop_plan(generation, ratio, selection, levels)


def test_spatial_regions_of_the_three_gen2_grids():
    square = spatial_regions(6, 6).view(6, 6)
    assert square[:3, :3].unique().tolist() == [0] and square[:3, 3:].unique().tolist() == [1]
    assert square[3:, :3].unique().tolist() == [2] and square[3:, 3:].unique().tolist() == [3]
    assert spatial_regions(12, 3).view(12, 3)[6:9].unique().tolist() == [2]  # tall: medium 1x4, one column
    assert spatial_regions(3, 12).view(3, 12)[:, 9:].unique().tolist() == [3]  # wide: medium 4x1
    # raster blocks of 9 are not quadrants: index 3 is in the top-right quadrant, raster block 0
    assert spatial_regions(6, 6)[3] == 1


def test_spatial_selection_hand_checked():
    # 6x6 grid: crop i scores i against its quadrant (regions on the axes, query on its region's axis)
    region_of = spatial_regions(6, 6)
    queries = torch.zeros(36, 4)
    queries[torch.arange(36), region_of] = torch.arange(36, dtype=torch.float32)
    chosen = select_high_crops(queries, torch.eye(4), 4, region_of).tolist()
    assert chosen == [14, 17, 32, 35]  # the last (highest) crop of each quadrant, raster order


def test_first_and_random_scores():
    region_of = torch.arange(24) // 6
    first = select_high_crops(torch.randn(24, 4), torch.randn(4, 4), 12, region_of, ablation_scores("first", 24, None))
    assert first.tolist() == [0, 1, 2, 6, 7, 8, 12, 13, 14, 18, 19, 20]
    a, b = ablation_scores("random", 24, 7), ablation_scores("random", 24, 7)
    assert torch.equal(a, b) and not torch.equal(a, ablation_scores("random", 24, 8))
    with pytest.raises(ValueError, match="needs selection_seeds"):
        ablation_scores("random", 24, None)


@pytest.mark.parametrize("generation,levels,blocks", [(1, "low", 1), (1, "low+medium", 5), (2, "low", 1), (2, "low+medium", 5)])
def test_levels_give_the_span_the_model_expects(tiny, random_image, generation, levels, blocks):
    model, processor = tiny[generation]
    inputs = processor([format_prompt("q")], [random_image(50, 40, 3)], levels=levels)
    span = processor.span_ids(levels=levels)
    assert span.count(processor.separator_id) == blocks
    assert inputs["input_ids"][0, : len(span)].tolist() == span
    with torch.no_grad():
        logits = model(**inputs).logits  # the model reads the levels from the span
        assert torch.equal(model(**inputs, levels=levels).logits, logits)
        with pytest.raises(ValueError, match="inputs were built for levels"):
            model(**inputs, levels=ALL)


@pytest.mark.parametrize("generation,ratio", [(1, 0.5), (2, 0.25)])
def test_selection_modes_choose_different_crops_with_the_same_span(tiny, random_image, generation, ratio):
    model, processor = tiny[generation]
    image = random_image(70, 50, 11)
    outputs = {}
    with torch.no_grad():
        for selection in ("similarity", "first", "random"):
            inputs = processor([format_prompt("q")], [image], selection_ratio=ratio, selection=selection)
            outputs[selection] = model(**inputs, selection_ratio=ratio, selection=selection, selection_seeds=[5]).logits
        again = model(**inputs, selection_ratio=ratio, selection="random", selection_seeds=[5]).logits
        other_seed = model(**inputs, selection_ratio=ratio, selection="random", selection_seeds=[6]).logits
    assert len({o.shape for o in outputs.values()}) == 1
    assert not torch.equal(outputs["similarity"], outputs["first"])
    assert torch.equal(outputs["random"], again) and not torch.equal(outputs["random"], other_seed)


def test_gen2_selection_without_grid_is_refused(tiny, random_image):
    model, processor = tiny[2]
    inputs = processor([format_prompt("q")], [random_image(70, 50, 11)], selection_ratio=0.25)
    del inputs["image_grids"]
    with pytest.raises(ValueError, match="needs each image's high-crop grid"):
        model(**inputs, selection_ratio=0.25)
