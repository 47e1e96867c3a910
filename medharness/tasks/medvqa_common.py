"""What the three medical VQA loaders share: the plugin skeleton (split check, data folder or
Hugging Face snapshot, answer-type definitions), a restricted unpickler, the HF parquet reader
and image references that stay inside the data folder."""

from __future__ import annotations

import io
import json
import pickle
import posixpath
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from medharness.errors import UserError
from medharness.images import ImageError, exc_reason, resolve_inside
from medharness.text import lmms_slake
from medharness.records import RecordError, json_kind, sample_id, text_problem
from medharness.schema import ImageRef, Sample
from medharness.tasks.base import ModalityOptions, TaskPlugin, card_modality, check_split, existing_folder
from medharness.tasks.hub import parquet_image, parquet_rows

ANSWER_TYPE_DEFINITIONS = ("dataset", "yesno")
DOCS = "docs/medical-vqa.md"


class MedVQAOptions(ModalityOptions):
    hf_split_names: Optional[dict[str, str]] = None  # our split name -> the Hugging Face copy's


class MedVQAPlugin(TaskPlugin):
    """Subclasses implement `read(root, split)` for every layout they accept and name the
    files a Hugging Face snapshot needs (`hf_patterns`)."""

    Options = MedVQAOptions
    strip_answers = True  # the release's answers are stripped; Path-VQA's HF copy keeps them as given

    def load(self, data_dir: Optional[Path], split: str) -> Iterator[Sample]:
        check_split(self.card, split)
        definition = self.answer_type_definition()
        if data_dir is not None:
            root = existing_folder(Path(data_dir), f"the {self.card.name} data")
        else:
            root = self.snapshot(self.hf_patterns(split), DOCS)
        for sample in self.read(root, split):
            yield with_answer_type(sample, definition)

    def read(self, root: Path, split: str) -> Iterator[Sample]:
        raise NotImplementedError

    def read_parquet(self, root: Path, split: str) -> Iterator[Sample]:
        """The Hugging Face parquet copy: image, question and answer only (no ids, types or
        organ), so the id is the row index within the split; `strip_answers` as the release."""
        hf_split = self.hf_split(split)
        for index, row in enumerate(parquet_rows(root, hf_split)):
            images, error = parquet_image(row, f"{hf_split}/{index}")
            answer = str(row.get("answer", ""))
            references = [answer.strip() if self.strip_answers else answer]
            metadata = {**card_modality(self.options, {}), "language": "en", **answer_type_metadata(references, None)}
            yield Sample(id=str(index), images=images, question=str(row.get("question", "")),
                         references=references, metadata=metadata, error=error)

    def hf_patterns(self, split: str) -> list[str]:
        return [f"data/{self.hf_split(split)}-*.parquet"]

    def hf_split(self, split: str) -> str:
        return (self.option("hf_split_names") or {}).get(split, split)

    def answer_type_definition(self) -> str:
        definition = self.card.answer_type_definition or "dataset"
        if definition not in ANSWER_TYPE_DEFINITIONS:
            raise UserError(
                f"task {self.card.name!r}: answer_type_definition {definition!r} is not one of "
                f"{', '.join(ANSWER_TYPE_DEFINITIONS)}; fix tasks/{self.card.name}.yaml"
            )
        return definition


# --- answer types -------------------------------------------------------------------------------

def is_yes_no(answer: str) -> bool:
    """The "gold is yes/no" definition: the answer, normalised as lmms-eval does for SLAKE
    (English and Chinese yes/no words), is "yes" or "no"."""
    return lmms_slake(answer) in ("yes", "no")


def answer_type_metadata(references: list[str], dataset_type: Optional[str]) -> dict[str, str]:
    """Both answer-type definitions where the data allows them (copies without the release's
    own type get only the yes/no one)."""
    out = {"answer_type_yesno": "closed" if references and is_yes_no(references[0]) else "open"}
    if dataset_type is not None:
        out["answer_type_dataset"] = dataset_type
    return out


def with_answer_type(sample: Sample, definition: str) -> Sample:
    """Set `answer_type` from the requested definition; a copy without the release's own type
    falls back to yes/no, and `answer_type_definition` records which one each sample got."""
    used = definition if f"answer_type_{definition}" in sample.metadata else "yesno"
    sample.answer_type = sample.metadata.get(f"answer_type_{used}")
    sample.metadata["answer_type_definition"] = used
    return sample


def release_answer_type(value: Any, closed: tuple[str, ...], open_: tuple[str, ...]) -> Optional[str]:
    """Map a release's own answer-type label to closed/open (None when unknown)."""
    text = str(value or "").strip().lower()
    if text in closed:
        return "closed"
    if text in open_:
        return "open"
    return None


# --- records ------------------------------------------------------------------------------------

def record_samples(
    path: Path, records: list, id_key: str, build: Callable[[Any], Optional[Sample]]
) -> Iterator[Sample]:
    """`build(record)` for each record of a release file (None: not in this split); a record
    that breaks a rule (RecordError) is a data error of that sample, named by file and index,
    and the rest of the file is read."""
    for n, rec in enumerate(records):
        try:
            sample = build(rec)
        except RecordError as exc:
            known = sample_id(rec.get(id_key)) if isinstance(rec, dict) else None
            yield Sample(id=known or f"record {n}", error=f"{path.name}: record {n}: {exc}", skip_reason="malformed record")
            continue
        if sample is not None:
            yield sample


def require(rec: Any, fields: tuple[str, ...], release: str) -> dict[str, Any]:
    missing = [f for f in fields if not isinstance(rec, dict) or f not in rec]
    if missing:
        raise RecordError(f"lacks {', '.join(missing)}; is this the {release} release?")
    return rec


def release_text(rec: dict[str, Any], field: str) -> str:
    """A text field of a release record. Numbers are text in these releases (VQA-RAD writes the
    answer 2 as a number); null, true/false, lists and objects are errors."""
    value = rec.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    problem = text_problem(value)
    if problem:
        raise RecordError(f"{field!r} {problem}")
    return value


def release_id(rec: dict[str, Any], field: str) -> str:
    value = sample_id(rec.get(field))
    if value is None:
        raise RecordError(f"{field!r} must be a string or a whole number, got {json_kind(rec.get(field))}")
    return value


# --- images -------------------------------------------------------------------------------------

def file_image(root: Path, relative: str) -> tuple[ImageRef, Optional[str]]:
    """A reference to an image file under `root`, or the reason it is refused (a path that
    is absolute or escapes the folder). Missing files are left for the runner to report."""
    try:
        resolve_inside(root, relative)
    except ImageError as exc:
        return ImageRef(root=str(root), path=relative), str(exc)
    return ImageRef(root=str(root), path=relative), None


def safe_member(name: str) -> Optional[str]:
    """A zip member name normalised, or None when it is absolute or climbs out with `..`."""
    if not name or name.startswith(("/", "\\")) or posixpath.isabs(name):
        return None
    clean = posixpath.normpath(name.replace("\\", "/"))
    if clean == ".." or clean.startswith("../"):
        return None
    return clean


# --- restricted unpickler -----------------------------------------------------------------------

# Constructors a pickle of plain data may name (protocol 2 pickles sets through `builtins.set`).
SAFE_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("collections", "OrderedDict"),
}


class RefusedPickle(pickle.UnpicklingError):
    """The pickle asks for something other than plain data."""


class PlainDataUnpickler(pickle.Unpickler):
    """Builds only lists, dicts, tuples, sets, strings, bytes, numbers, booleans and None;
    anything that would import or call other code is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise RefusedPickle(f"it asks for {module}.{name}; only plain containers, strings and numbers are allowed (a pickle that names other code could run it)")

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle("it uses persistent ids; only plain containers, strings and numbers are allowed (a pickle that names other code could run it)")


def read_json_list(path: Path) -> list:
    """A release's JSON file holding a list of question records."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found; the data folder must hold the release's files (see {DOCS})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); download the release again") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a release's question list; download the release again") from None
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of questions")
    return records


# Bounds on what a plain-data pickle may build, checked on its opcodes before anything is built.
MAX_PICKLE_DEPTH = 64
MAX_PICKLE_OBJECTS = 50_000_000
CONTAINER_OPS = {
    "EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE", "EMPTY_SET", "LIST", "DICT", "TUPLE", "TUPLE1", "TUPLE2",
    "TUPLE3", "FROZENSET", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST",
}
IN_PLACE_OPS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}


class Built:
    """What the scan knows of one object the pickle would build."""

    __slots__ = ("container", "depth")

    def __init__(self, container: bool, depth: int) -> None:
        self.container, self.depth = container, depth


MARK = object()


def scan_pickle(raw: bytes) -> None:
    """Refuses, before unpickling, a pickle that nests deeper than MAX_PICKLE_DEPTH, builds
    more than MAX_PICKLE_OBJECTS objects, or puts one container in several places. Plain
    question records never share a list, dict or tuple; shared ones are how a few hundred
    bytes expand without bound (or make hashing a nested tuple take forever)."""
    import pickletools

    stack: list[Any] = []
    memo: dict[Any, Built] = {}
    for count, (op, arg, _) in enumerate(pickletools.genops(raw)):
        name = op.name
        if count > MAX_PICKLE_OBJECTS:
            raise RefusedPickle(f"it builds more than {MAX_PICKLE_OBJECTS} objects; is this a release's question file?")
        if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            memo[arg if name != "MEMOIZE" else len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if memo[arg].container:
                raise RefusedPickle("it puts one list, dict or tuple in several places; plain question records never "
                                    "share one, and shared references can expand without bound")
            stack.append(memo[arg])
        elif name == "MARK":
            stack.append(MARK)
        elif name == "STOP":
            return
        elif name not in ("PROTO", "FRAME"):
            apply_op(op, name, stack)


def apply_op(op: Any, name: str, stack: list[Any]) -> None:
    import pickletools

    popped: list[Built] = []
    for slot in reversed(op.stack_before):
        if slot is pickletools.stackslice:
            while stack[-1] is not MARK:
                popped.append(stack.pop())
        elif slot is pickletools.markobject:
            stack.pop()
        else:
            popped.append(stack.pop())
    if name == "DUP":
        stack += [popped[0], popped[0]]
        return
    children = popped[:-1] if name in IN_PLACE_OPS else popped
    depth = 1 + max((c.depth for c in children), default=0)
    if depth > MAX_PICKLE_DEPTH:
        raise RefusedPickle(f"it nests deeper than {MAX_PICKLE_DEPTH} levels; question records are a few levels deep")
    if name in IN_PLACE_OPS:
        target = popped[-1]
        target.depth = max(target.depth, depth)
        stack.append(target)
    else:
        stack.extend(Built(name in CONTAINER_OPS, depth) for _ in op.stack_after)


def load_plain_pickle(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} not found; the data folder must hold the release's files (see docs/medical-vqa.md)") from None
    try:
        scan_pickle(raw)
        return PlainDataUnpickler(io.BytesIO(raw), encoding="utf-8").load()
    except RefusedPickle as exc:
        raise UserError(f"refusing to load {path}: {exc}") from None
    except Exception as exc:  # truncated or corrupt files raise many types
        raise UserError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc_reason(exc)}); download it again") from None
