"""Open or yes/no VQA in lmms-lab's parquet layout: POPE, ChartQA, TextVQA, MM-Vet.

One plugin, configured by the card's options, because these sets differ only in columns:

  id_column          the native id (absent: the row index within the split; ChartQA has none)
  question_column    default "question"
  answer_column      default "answer"; a list cell gives several references (TextVQA's 10)
  strip_text         strip question and answers; `lowercase_answers` lowers the answers (POPE)
  answer_type        "open" (default) or "closed", the same for every sample
  image_column       default "image"; `image_name_column` names an image that carries no path
                     in the file, else the `image_name` template over the row ({index}: row index)
  metadata_columns   {metadata key: column}, the cell as text (None where missing)
  value_maps         {metadata key: {raw value: label}} (ChartQA's human_test -> human)
  comma_lists        metadata keys holding comma-joined labels (MM-Vet capability): a sorted list
                     (an item counts in each label's group) and `<key>_set`, the joined combination
  modality / modality_map / modality_key, as every parquet card (tasks.base.card_modality)
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import field_validator

from medharness.registry import TASK_PLUGINS
from medharness.schema import Sample, template_fields
from medharness.tasks.base import card_modality
from medharness.tasks.general_data import ParquetOptions, ParquetTask, Row, as_list, image_refs, is_missing


class ParquetVqaOptions(ParquetOptions):
    """The keys of the module docstring; columns are named as the parquet has them."""

    id_column: Optional[str] = None
    question_column: Optional[str] = None
    answer_column: Optional[str] = None
    strip_text: Optional[bool] = None
    lowercase_answers: Optional[bool] = None
    answer_type: Optional[Literal["open", "closed"]] = None
    image_column: Optional[str] = None
    image_name_column: Optional[str] = None
    image_name: Optional[str] = None
    metadata_columns: Optional[dict[str, str]] = None
    value_maps: Optional[dict[str, dict[str, str]]] = None
    comma_lists: Optional[list[str]] = None

    @field_validator("image_name")
    @classmethod
    def plain_fields(cls, template: Optional[str]) -> Optional[str]:
        if template is not None:
            template_fields(template)  # plain {column} fields only: str.format can only insert text
        return template


class RowFields(dict):
    """A row for `str.format_map`: a column the row lacks reads as None, as `row.get` does."""

    def __missing__(self, key: str) -> None:
        return None


class ParquetVqaTask(ParquetTask):
    Options = ParquetVqaOptions

    def text(self, value: Any) -> str:
        return str(value).strip() if self.option("strip_text", False) else str(value)

    def references(self, row: Row) -> list[str]:
        cell = row.get(self.option("answer_column", "answer"))
        answers = [self.text(a) for a in ([cell] if isinstance(cell, str) else as_list(cell))]
        return [a.lower() for a in answers] if self.option("lowercase_answers", False) else answers

    def metadata(self, row: Row) -> dict[str, Any]:
        maps = self.option("value_maps") or {}
        meta: dict[str, Any] = {}
        for key, column in (self.option("metadata_columns") or {}).items():
            value = None if is_missing(row.get(column)) else str(row[column])
            meta[key] = maps.get(key, {}).get(value, value)
        for key in self.option("comma_lists", []):
            labels = sorted(c.strip() for c in str(meta.get(key) or "").split(",") if c.strip())
            meta[key], meta[f"{key}_set"] = labels, ",".join(labels)
        meta.update(card_modality(self.options, meta))
        return meta

    def to_sample(self, row: Row, index: int) -> Sample:
        id_column = self.option("id_column")
        named = row.get(self.option("image_name_column")) if self.option("image_name_column") else None
        name = str(named) if named else self.option("image_name", "image").format_map(RowFields(row, index=index))
        return self.with_images(
            str(row[id_column]) if id_column else str(index),
            image_refs(row.get(self.option("image_column", "image")), name),
            question=self.text(row[self.option("question_column", "question")]),
            references=self.references(row),
            answer_type=self.option("answer_type", "open"),
            metadata=self.metadata(row),
        )


TASK_PLUGINS.register("parquet_vqa", ParquetVqaTask)
