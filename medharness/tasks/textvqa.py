"""TextVQA (reading text in natural images) in lmms-lab's parquet layout.

Columns used: question_id, question, image, answers (10 human answers), image_classes,
set_name. The 10 answers are the references that VQA accuracy counts against.
"""

from __future__ import annotations

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.general_data import ParquetTask, Row, as_list, image_refs


class TextVqaTask(ParquetTask):
    def to_sample(self, row: Row, index: int) -> Sample:
        return self.with_images(
            str(row["question_id"]),
            image_refs(row.get("image"), f"{row.get('image_id')}.jpg"),
            question=str(row["question"]),
            references=[str(a) for a in as_list(row.get("answers"))],
            answer_type="open",
            metadata={
                "image_id": row.get("image_id"),
                "modality": "natural",
                "modality_source": "card",
            },
        )


TASK_PLUGINS.register("textvqa", TextVqaTask)
