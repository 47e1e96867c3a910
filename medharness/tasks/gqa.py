"""GQA testdev-balanced in lmms-lab's parquet layout: two configs joined on the image id.

`testdev_balanced_instructions/testdev-*.parquet`: id, imageId, question, answer, fullAnswer,
types {structural, semantic, detailed}, ...; `testdev_balanced_images/testdev-*.parquet`: id,
image. Options `config` and `images_config` name the two folders. A question whose image is
absent from the image config becomes a per-sample error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from medharness.registry import TASK_PLUGINS
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import card_modality
from medharness.tasks.general_data import ParquetOptions, ParquetTask, Row, image_refs, read_rows


class GqaOptions(ParquetOptions):
    images_config: Optional[str] = None


class GqaTask(ParquetTask):
    default_config = "testdev_balanced_instructions"
    Options = GqaOptions

    def rows(self, files: list[Path], data_dir: Optional[Path], split: str) -> Iterator[Row]:
        image_files = self.files_for(data_dir, self.option("images_config", "testdev_balanced_images"), split)
        # The image config is small (398 images for testdev) next to the 12,578 questions.
        self.images: dict[str, list[ImageRef]] = {
            str(row["id"]): image_refs(row.get("image"), f"{row['id']}.jpg") for row in read_rows(image_files)
        }
        return read_rows(files)

    def to_sample(self, row: Row, index: int) -> Sample:
        types = row.get("types") or {}
        return self.with_images(
            str(row["id"]),
            self.images.get(str(row["imageId"]), []),
            missing=f"image {row['imageId']} is not in {self.option('images_config', 'testdev_balanced_images')}",
            question=str(row["question"]),
            references=[str(row["answer"])],
            answer_type="open",
            metadata={
                "image_id": str(row["imageId"]),
                "structural_type": types.get("structural"),
                "semantic_type": types.get("semantic"),
                "full_answer": row.get("fullAnswer"),
                **card_modality(self.options, {}),
            },
        )


TASK_PLUGINS.register("gqa", GqaTask)
