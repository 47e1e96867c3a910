"""Cost accounting: the analytical FLOPs against torch's FlopCounterMode, and the cost record."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from medharness.models.dragonfly.configuration import crop_plan
from medharness.models.dragonfly.cost import sample_flops
from medharness.models.dragonfly.processing import format_prompt

NEW = 4


@pytest.fixture
def eager(tiny):
    """FlopCounterMode does not see inside CPU SDPA; eager attention runs the same products as
    plain batched matmuls, which it counts."""
    for model, _ in tiny.values():
        model.set_attn_implementation("eager")
    yield tiny
    for model, _ in tiny.values():
        model.set_attn_implementation("sdpa")


def counted(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("generation,ratio,levels", [(1, 0.25, None), (2, 0.5, None), (1, None, "low+medium")])
def test_formulas_agree_with_flop_counter(eager, random_image, generation, ratio, levels):
    model, processor = eager[generation]
    inputs = processor([format_prompt("What organ is shown?")], [random_image(60, 40, 2)], selection_ratio=ratio, levels=levels)
    plan = crop_plan(generation, ratio, None, levels)
    tokens = inputs["input_ids"].shape[1]
    with torch.no_grad():
        prefill = counted(lambda: model(**inputs, logits_to_keep=1))
        total = counted(lambda: model.generate(**inputs, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False))
    crops = inputs["pixel_values"].shape[1]
    formula = sample_flops(model.config, plan, crops, tokens, NEW)
    prefill_formula = formula["flops_vision"] + formula["flops_projector"] + formula["flops_prefill"]
    assert prefill_formula == pytest.approx(prefill, rel=0.02)
    assert formula["flops"] == pytest.approx(total, rel=0.02)
    assert formula["flops_decode"] == pytest.approx(total - prefill, rel=0.02)
    assert formula["flops"] == sum(v for k, v in formula.items() if k != "flops")


def test_text_only_sample_has_no_vision_cost(eager):
    model, processor = eager[1]
    inputs = processor([format_prompt("Hello")], [None])
    with torch.no_grad():
        prefill = counted(lambda: model(**inputs, logits_to_keep=1))
    formula = sample_flops(model.config, crop_plan(1), 0, inputs["input_ids"].shape[1], 1)
    assert formula["flops_vision"] == formula["flops_projector"] == formula["flops_decode"] == 0
    assert formula["flops"] == pytest.approx(prefill, rel=0.02)
