"""HallusionBench in lmms-lab's parquet layout (`data/image-*.parquet`, the image questions).

Columns: category (VD visual dependent / VS visual supplement), subcategory, visual_input (0 no
image, 1 original figure, 2 edited figure), set_id, figure_id, sample_note, question_id,
question, gt_answer_details, gt_answer ("1" yes, "0" no), filename, image. Only image questions
are evaluated (visual_input != 0, as lmms-eval's `hallusion_bench_image`); the sample id is the
authors' unique question key category_subcategory_set_id_figure_id_question_id. The pair and
figure keys of the authors' qAcc and fAcc go to metadata for the metrics' clustered bootstrap.

The dataset has no modality column; the card's `modality_map` over `modality_key: subcategory` derives
one (chart, table, map, ...), recorded as `modality_source: derived`.
"""

from __future__ import annotations

from typing import Any, Optional

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.base import card_modality
from medharness.tasks.general_data import ParquetTask, Row, image_refs, is_missing

GOLD = {"1": "yes", "0": "no"}
KEY_COLUMNS = ("category", "subcategory", "set_id", "figure_id", "question_id")


def text(value: Any) -> str:
    return "" if is_missing(value) else str(value).strip()


class HallusionBenchTask(ParquetTask):
    def to_sample(self, row: Row, index: int) -> Optional[Sample]:
        if text(row.get("visual_input")) == "0":
            return None  # a question without image: not part of the image benchmark
        key = {column: text(row.get(column)) for column in KEY_COLUMNS}
        base = f"{key['category']}_{key['subcategory']}_{key['set_id']}"
        gold = GOLD.get(text(row.get("gt_answer")))
        sample = self.with_images(
            f"{base}_{key['figure_id']}_{key['question_id']}",
            image_refs(row.get("image"), text(row.get("filename")) or "image"),
            question=text(row.get("question")),
            references=[gold] if gold else [],
            answer_type="closed",
            metadata={
                **key,
                "visual_input": text(row.get("visual_input")),
                "question_pair": f"{base}_{key['question_id']}",
                "figure": f"{base}_{key['figure_id']}",
                **card_modality(self.options, key),
            },
        )
        if gold is None and sample.error is None:
            sample.error = f"gt_answer {row.get('gt_answer')!r} is not '1' (yes) or '0' (no)"
        return sample


TASK_PLUGINS.register("hallusionbench", HallusionBenchTask)
