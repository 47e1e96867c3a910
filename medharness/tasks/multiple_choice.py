"""Multiple-choice benchmarks in the HF parquet layout: AI2D, ScienceQA, MMMU, MMBench, SEED-Bench.

One plugin, configured by the card's options, because these sets differ only in column names:

  id_column        the native id (absent: the row index within the split)
  choices_column   a list cell, or a string holding a list literal (MMMU `options`)
  choice_columns   one column per option instead (MMBench A..E, SEED-Bench choice_a..d);
                   empty cells end the list
  answer_column    the gold; `answer_format` "index" (0-based, AI2D/ScienceQA) or "letter"
  image_columns    columns holding an image or a list of images; all go to the model in order
  hint_column      context prepended to the question as "Context: ..." (ScienceQA, MMBench)
  metadata_columns {metadata key: column}; list cells stay lists (counted in each group)
  subject_pattern  a regex whose first group, applied to the id, is metadata `subject` (MMMU)
  value_maps       {metadata key: {raw value: label}} (SEED-Bench's question_type_id)
  modality         the modality of every sample; `modality_map` {raw: modality} with
                   `modality_key` derives it per sample instead (MMMU img_type), else unknown
  circular         true for MMBench: ids >= 1,000,000 are rotated copies of id % 1,000,000

Items without options (MMMU's open questions) are `answer_type: open` with the raw answer as
reference; multiple-choice items are `closed`, with the gold letter as reference.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional

from pydantic import field_validator

from medharness.registry import TASK_PLUGINS
from medharness.schema import GenerationSettings, Request, Sample, template_fields
from medharness.tasks.base import card_modality
from medharness.tasks.general_data import ParquetOptions, ParquetTask, Row, as_list, image_refs, is_missing

CIRCULAR_BASE = 1_000_000


def letter(i: int) -> str:
    return chr(ord("A") + i)


class MultipleChoiceOptions(ParquetOptions):
    """The keys of the module docstring; columns are named by strings, as the parquet has them."""

    id_column: Optional[str] = None
    choices_column: Optional[str] = None
    choice_columns: Optional[list[str]] = None
    answer_column: Optional[str] = None
    answer_format: Optional[Literal["letter", "index"]] = None
    image_columns: Optional[list[str]] = None
    hint_column: Optional[str] = None
    question_column: Optional[str] = None
    metadata_columns: Optional[dict[str, str]] = None
    subject_pattern: Optional[str] = None
    value_maps: Optional[dict[str, dict[str, str]]] = None
    circular: Optional[bool] = None
    open_prompt: Optional[str] = None

    @field_validator("open_prompt")
    @classmethod
    def question_only(cls, prompt: Optional[str]) -> Optional[str]:
        if prompt is not None and any(f != "question" for f in template_fields(prompt)):
            raise ValueError("open_prompt fills in only {question}")
        return prompt


class MultipleChoiceTask(ParquetTask):
    Options = MultipleChoiceOptions

    def choices(self, row: Row) -> list[str]:
        columns = self.option("choice_columns")
        if columns:
            out = []
            for column in columns:
                if is_missing(row.get(column)):
                    break
                out.append(str(row[column]))
            return out
        return [str(c) for c in as_list(row.get(self.option("choices_column", "options")))]

    def references(self, row: Row, choices: list[str]) -> list[str]:
        """The gold letter of a multiple-choice item; an open item's answer(s) as given (MMMU
        writes several acceptable answers as a list literal)."""
        raw = row.get(self.option("answer_column", "answer"))
        if is_missing(raw):
            return []
        if not choices:
            return [str(a) for a in as_list(raw)]
        if self.option("answer_format", "letter") == "index":
            index = int(raw)
            return [letter(index)] if 0 <= index < len(choices) else []
        gold = str(raw).strip().upper()
        return [gold] if len(gold) == 1 and 0 <= ord(gold) - ord("A") < len(choices) else []

    def metadata(self, row: Row, sample_id: str) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        maps = self.option("value_maps") or {}
        for key, column in (self.option("metadata_columns") or {}).items():
            value = row.get(column)
            if is_missing(value):
                continue
            if isinstance(value, (list, tuple)) or _is_list_literal(value):
                value = [str(v) for v in as_list(value)]
            if key in maps:
                value = maps[key].get(str(value), str(value))
            meta[key] = value
        pattern = self.option("subject_pattern")
        if pattern:
            found = re.match(pattern, sample_id)
            if found:
                meta["subject"] = found.group(1)
        meta.update(card_modality(self.options, meta))
        if self.option("circular"):
            number = int(sample_id)
            meta["circular_index"] = str(number % CIRCULAR_BASE)
            meta["circular_copy"] = number // CIRCULAR_BASE
        return meta

    def to_sample(self, row: Row, index: int) -> Optional[Sample]:
        id_column = self.option("id_column")
        sample_id = str(row[id_column]) if id_column else str(index)
        choices = self.choices(row)
        references = self.references(row, choices)
        question = str(row.get(self.option("question_column", "question")) or "")
        hint_column = self.option("hint_column")
        if hint_column and not is_missing(row.get(hint_column)):
            question = f"Context: {row[hint_column]}\n{question}"
        refs = [ref for column in self.option("image_columns", ["image"]) for ref in image_refs(row.get(column), column)]
        sample = self.with_images(
            sample_id,
            refs,
            question=question,
            references=references,
            answer_type="closed" if choices else "open",
            choices=choices or None,
            metadata=self.metadata(row, sample_id),
        )
        if not references and sample.error is None:
            sample.error = "row has no usable gold answer"
        return sample


    def request(self, sample: Sample, generation: GenerationSettings) -> Request:
        """Items without options (MMMU's open questions) use the card's `open_prompt` option:
        the multiple-choice instruction would ask them for a letter. The choice between the
        two depends on the question's form, never on the gold answer."""
        request = super().request(sample, generation)
        if not sample.choices and self.option("open_prompt"):
            request.prompt = self.option("open_prompt").format(question=sample.question)
        return request


def _is_list_literal(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("[")


TASK_PLUGINS.register("multiple_choice", MultipleChoiceTask)
