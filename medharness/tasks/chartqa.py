"""ChartQA test in lmms-lab's parquet layout: columns type (human_test / augmented_test),
question, answer, image. The copy has no ids: the sample id is the row index in the split.
`type` becomes metadata `question_source` (human / augmented), ChartQA's two reported halves.
"""

from __future__ import annotations

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.general_data import ParquetTask, Row, image_refs


class ChartQaTask(ParquetTask):
    def to_sample(self, row: Row, index: int) -> Sample:
        source = str(row.get("type") or "unknown").removesuffix("_test")
        return self.with_images(
            str(index),
            image_refs(row.get("image"), f"{index}.png"),
            question=str(row["question"]),
            references=[str(row["answer"])],
            answer_type="open",
            metadata={"question_source": source, "modality": "chart", "modality_source": "card"},
        )


TASK_PLUGINS.register("chartqa", ChartQaTask)
