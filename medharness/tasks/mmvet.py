"""MM-Vet in lmms-lab's parquet layout: question_id, image, question, answer, image_source,
capability (comma-joined, e.g. "rec,ocr,spat"). Answers may join alternatives with <AND> / <OR>;
the judge reads them as they are. `capability` becomes a list (an item counts in each of its
capability groups) and `capability_set` keeps the joined combination, MM-Vet's second table.
MM-Vet mixes photographs, charts, documents and screenshots with no label: modality unknown.
"""

from __future__ import annotations

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample
from medharness.tasks.general_data import ParquetTask, Row, image_refs


class MmVetTask(ParquetTask):
    def to_sample(self, row: Row, index: int) -> Sample:
        capabilities = sorted(c.strip() for c in str(row.get("capability") or "").split(",") if c.strip())
        return self.with_images(
            str(row["question_id"]),
            image_refs(row.get("image"), str(row.get("image_source") or row["question_id"])),
            question=str(row["question"]),
            references=[str(row["answer"])],
            answer_type="open",
            metadata={
                "capability": capabilities,
                "capability_set": ",".join(capabilities),
                "modality": "unknown",
                "modality_source": "card",
            },
        )


TASK_PLUGINS.register("mmvet", MmVetTask)
