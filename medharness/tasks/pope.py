"""POPE (object hallucination, yes/no questions on COCO images) in lmms-lab's parquet layout.

Columns: id, question_id, question, answer (yes/no), image_source, image, category
(adversarial / popular / random). `question_id` restarts in each category, so the sample id is
the dataset's unique `id`; the per-category question id is kept in metadata.
"""

from __future__ import annotations

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.general_data import ParquetTask, Row, image_refs


class PopeTask(ParquetTask):
    def to_sample(self, row: Row, index: int) -> Sample:
        return self.with_images(
            str(row["id"]),
            image_refs(row.get("image"), str(row.get("image_source") or "image")),
            question=str(row["question"]).strip(),
            references=[str(row["answer"]).strip().lower()],
            answer_type="closed",
            metadata={
                "category": row.get("category"),
                "question_id": str(row.get("question_id")),
                "image_source": row.get("image_source"),
                "modality": "natural",
                "modality_source": "card",
            },
        )


TASK_PLUGINS.register("pope", PopeTask)
