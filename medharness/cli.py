"""The `medharness` command line. Every user mistake is one line on stderr and exit code 2;
`--debug` (anywhere on the line) shows the traceback instead."""

from __future__ import annotations

import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterable, Optional, TextIO

import typer
from rich.text import Text

from medharness.console import console, print_summary, progress_bar
from medharness.errors import Interrupted, SkippedWarning, UserError

if TYPE_CHECKING:
    from medharness.runner import RunConfig
    from medharness.schema import RunRecord

# click's exceptions as the installed typer raises them: typer 0.29 raises its own vendored copy,
# older typer raises click's, so the classes are taken from typer itself, never from `click`.
CLICK_ERRORS = sys.modules[typer.BadParameter.__module__]

app = typer.Typer(
    name="medharness", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Evaluate vision-language models on biomedical benchmarks, with named metric definitions.",
)
analyze_app = typer.Typer(no_args_is_help=True, help="Studies over results/: by modality, selection settings, hallucination, cost.")
app.add_typer(analyze_app, name="analyze")

# Options declared once, reused by the commands.
TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Task card name (see `medharness list tasks`).")]
TasksOpt = Annotated[list[str], typer.Option("--task", "-t", help="Task card name(s): comma-separated or the option repeated (see `medharness list tasks`).")]
ModelsOpt = Annotated[list[str], typer.Option("--model", "-m", help="Model card name(s) or card .yaml paths: comma-separated or the option repeated.")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="Local copy of the dataset (original release or HF layout). Default: the card's env variable, else the Hugging Face copy.")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Split to evaluate (default: the card's).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Evaluate only the first N samples.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for bootstrap CIs and any sampling.")]
ResultsOpt = Annotated[Path, typer.Option("--results", help="Results folder (runs and the response cache).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder for the generated report files.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
TasksFilterOpt = Annotated[Optional[str], typer.Option("--task", "-t", help="Only these tasks (comma-separated).")]


def split_list(value: Optional[str]) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def parse_ratios(value: Optional[str]) -> list[Optional[float]]:
    if not value:
        return [None]
    ratios = []
    for part in split_list(value):
        try:
            r = float(part)
        except ValueError:
            raise UserError(f"--selection-ratio: {part!r} is not a number; give ratios in (0, 1] like 0.25,0.5,1.0") from None
        if not 0 < r <= 1:
            raise UserError(f"--selection-ratio: {r:g} is outside (0, 1]; give ratios like 0.25,0.5,1.0")
        ratios.append(r)
    return ratios


def execute_with_progress(config: "RunConfig", label: str, enabled: bool) -> tuple[Path, "RunRecord"]:
    """One run with its progress bar; Ctrl-C becomes `Interrupted`, saying how far it got."""
    from medharness.runner import execute

    with progress_bar(label, enabled=enabled) as hook:
        try:
            return execute(config, progress=hook)
        except KeyboardInterrupt:
            raise Interrupted(hook.done, hook.total) from None


def parse_choices(value: Optional[str], option: str, allowed: tuple[str, ...]) -> list[Optional[str]]:
    """A comma-separated sweep of named settings (one run each); no value = the model's default."""
    if not value:
        return [None]
    for part in split_list(value):
        if part not in allowed:
            raise UserError(f"{option}: {part!r} is not one of {', '.join(allowed)}")
    return split_list(value)


@app.command()
def run(
    task: TasksOpt,
    model: ModelsOpt,
    data_dir: DataDirOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Requests per model call (default: the model card's). Results do not depend on it.")] = None,
    selection_ratio: Annotated[Optional[str], typer.Option("--selection-ratio", help="Dragonfly zoom-in selection ratio(s), e.g. 0.25,0.5,1.0: one run per ratio.")] = None,
    selection: Annotated[Optional[str], typer.Option("--selection", help="Dragonfly high-crop selection(s): similarity, random (seeded by --seed and the sample id), first, none; comma-separated: one run each.")] = None,
    levels: Annotated[Optional[str], typer.Option("--levels", help="Dragonfly crop levels: low, low+medium, low+medium+high; comma-separated: one run each.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", min=1, help="Override the generation length.")] = None,
    image_max_side: Annotated[Optional[int], typer.Option("--image-max-side", min=1, help="Downscale every image so its long side is at most N pixels before any model sees it (bicubic; never upscaled).")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Model card of the judge for judged metrics (MM-Vet).")] = None,
    results: ResultsOpt = Path("results"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Start a fresh run even if an unfinished one exists.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate model(s) on task(s): writes results/<run>/run.json and samples.jsonl.

    Several tasks, models or selection ratios make one run each; a task that fails (say, its data
    is missing) is reported and the others go on. Run the same command again to resume.
    """
    from medharness import distributed
    from medharness.runner import RunConfig

    main_rank = distributed.current().is_main  # under torchrun only rank 0 reports
    tasks, models = split_list(",".join(task)), split_list(",".join(model))
    ratios = parse_ratios(selection_ratio)
    settings = [(r, s, lv) for r in ratios
                for s in parse_choices(selection, "--selection", ("similarity", "random", "first", "none"))
                for lv in parse_choices(levels, "--levels", ("low", "low+medium", "low+medium+high"))]
    if data_dir is not None and len(tasks) > 1:
        raise UserError("--data-dir names one dataset; run one task at a time with it, or set each card's data variable")
    failures = []
    for t in tasks:
        for m in models:
            for r, sel, lv in settings:
                config = RunConfig(
                    task=t, model=m, data_dir=data_dir, split=split, limit=limit, seed=seed,
                    batch_size=batch_size, results_dir=results, selection_ratio=r, selection=sel, levels=lv,
                    image_max_side=image_max_side,
                    max_new_tokens=max_new_tokens, use_cache=not no_cache, resume=not no_resume, judge=judge,
                )
                try:
                    run_dir, record = execute_with_progress(config, f"{t} / {m}", enabled=main_rank and not quiet)
                except UserError as exc:
                    if len(tasks) * len(models) * len(settings) == 1:
                        raise
                    console.print(Text.assemble(("error", "red"), f" ({t} / {m}): {exc}"), soft_wrap=True)
                    failures.append(f"{t}/{m}")
                    continue
                if main_rank:
                    print_summary(str(run_dir), record)
    if failures:
        raise UserError(f"{len(failures)} run(s) failed: {', '.join(failures)}")


@app.command()
def score(
    task: TaskOpt,
    predictions: Annotated[Path, typer.Option("--predictions", "-p", help='JSONL file, one {"id": ..., "prediction": ...} per sample.')],
    data_dir: DataDirOpt = None,
    split: SplitOpt = None,
    seed: SeedOpt = 0,
    results: ResultsOpt = Path("results"),
) -> None:
    """Score another tool's predictions with this task's metric definitions (no model needed).

    Ids the task does not know, samples without a prediction (scored as wrong) and duplicate ids
    are reported with counts and the first few ids.
    """
    from medharness.runner import RunConfig
    from medharness.schema import ModelCard

    if not predictions.is_file():
        raise UserError(f"predictions file {str(predictions)!r} not found")
    card = ModelCard(
        name=f"replay-{predictions.stem}", adapter="replay", options={"path": str(predictions.resolve())},
        description=f"predictions replayed from {predictions.name}",
    )
    config = RunConfig(task=task, model=card.name, model_card=card, data_dir=data_dir, split=split, seed=seed, results_dir=results)
    run_dir, record = execute_with_progress(config, f"{task} / {card.name}", enabled=False)
    print_summary(str(run_dir), record)


@app.command("list")
def list_(
    what: Annotated[Optional[str], typer.Argument(help="tasks, models, metrics, adapters, formats, or show NAME (default: tasks and models).")] = None,
    name: Annotated[Optional[str], typer.Argument(help="With show: the task or model card to show in full.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Every column (metrics, sources, weights), wrapped.")] = False,
) -> None:
    """What can be run: one line per task and model card; `list show NAME` for one card in full."""
    from medharness.listing import print_listing

    print_listing(what, name, wide)


@app.command()
def validate(paths: Annotated[Optional[list[Path]], typer.Argument(help="Card files (default: every card in tasks/ and models/).")] = None) -> None:
    """Check cards: YAML, known keys, and that their format/adapter/metrics exist."""
    from medharness.listing import validate_cards

    problems = validate_cards(paths or [])
    for problem in problems:
        console.print(Text.assemble(("invalid", "red"), f" {problem}"), soft_wrap=True)
    if problems:
        raise UserError(f"{len(problems)} card(s) invalid")
    console.print("all cards valid")


@app.command()
def fixtures(
    out: Annotated[Path, typer.Argument(help="Folder to write the datasets into.")],
    names: Annotated[Optional[list[str]], typer.Argument(help="Fixture names (default: all).")] = None,
) -> None:
    """Write small generated datasets in each benchmark's real layout (for tests and trials)."""
    from medharness.fixtures.base import write_fixture
    from medharness.registry import FIXTURES

    for name in names or FIXTURES.names():
        console.print(f"{name}: {write_fixture(name, out)}")


@app.command()
def demo(
    data: Annotated[Path, typer.Option("--data", help="Where the generated sample data goes.")] = Path("data/demo"),
    results: ResultsOpt = Path("results"),
    out: OutOpt = Path("reports"),
) -> None:
    """Offline demo: generate sample data, evaluate baselines and a tiny random Dragonfly, write reports."""
    from medharness.demo import run_demo

    run_demo(data, results, out)


def print_written(paths: Iterable[Path]) -> None:
    for path in paths:
        console.print(f"wrote {path}")


@app.command()
def report(
    results: ResultsOpt = Path("results"),
    out: OutOpt = Path("reports"),
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="System (row label or model name): add a paired difference column against it.")] = None,
) -> None:
    """Leaderboard from results/ (Markdown, CSV, self-contained HTML). Never runs a model."""
    from medharness.report.leaderboard import write_leaderboard

    print_written(write_leaderboard(results, out, baseline))


@app.command()
def view(
    task: TasksFilterOpt = None,
    results: ResultsOpt = Path("results"),
    out: Annotated[Path, typer.Option("--out", help="The page to write (a .html file, with one task) or the folder for one page per task.")] = Path("reports"),
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="The dataset's folder, when it moved since the run (default: the folder the run recorded).")] = None,
) -> None:
    """Sample explorer: one self-contained HTML page per task with images, answers and filters."""
    from medharness.report.explorer import write_explorers

    page = out if out.suffix.lower() in (".html", ".htm") else None
    print_written(write_explorers(results, out if page is None else out.parent, split_list(task) or None, page, data_dir))


@analyze_app.command("modality")
def analyze_modality(results: ResultsOpt = Path("results"), out: OutOpt = Path("reports"), task: TasksFilterOpt = None) -> None:
    """Per-modality, organ and question-type tables and charts with CIs, for every model."""
    from medharness.report.analysis import analyze_modality as study

    print_written(study(results, out, split_list(task) or None))


@analyze_app.command("selection")
def analyze_selection(results: ResultsOpt = Path("results"), out: OutOpt = Path("reports"), task: TasksFilterOpt = None) -> None:
    """Dragonfly sweeps: metric against selection ratio, with visual tokens and seconds per sample."""
    from medharness.report.selection import analyze_selection as study

    print_written(study(results, out, split_list(task) or None))


@analyze_app.command("hallucination")
def analyze_hallucination(results: ResultsOpt = Path("results"), out: OutOpt = Path("reports"), task: TasksFilterOpt = None) -> None:
    """POPE, HallusionBench, ProbMed: yes-ratio, false yes on gold-no items and paired scores, by group and selection ratio."""
    from medharness.report.hallucination import analyze_hallucination as study

    print_written(study(results, out, split_list(task) or None))


@analyze_app.command("cost")
def analyze_cost(results: ResultsOpt = Path("results"), out: OutOpt = Path("reports"), task: TasksFilterOpt = None) -> None:
    """Headline metric against visual tokens, FLOPs, seconds (fresh rows) and peak memory per setting, Pareto front marked."""
    from medharness.report.cost import analyze_cost as study

    print_written(study(results, out, split_list(task) or None))


python_show_warning = warnings.showwarning


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Optional[TextIO] = None, line: Optional[str] = None) -> None:
    """A SkippedWarning is one `warning:` line; other warnings keep Python's own format."""
    if issubclass(category, SkippedWarning):
        console.print(Text.assemble(("warning:", "yellow"), f" {message}"), soft_wrap=True)
    else:
        python_show_warning(message, category, filename, lineno, file, line)


def main(argv: Optional[list[str]] = None) -> None:
    warnings.showwarning = show_warning
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        code = app(args=args, prog_name="medharness", standalone_mode=False)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        fail(str(exc))
    except Interrupted as exc:
        console.print(str(exc), soft_wrap=True)
        sys.exit(130)
    except CLICK_ERRORS.ClickException as exc:
        if isinstance(exc, getattr(CLICK_ERRORS, "NoArgsIsHelpError", ())):
            exc.show()  # the help text, as `medharness` alone asks for
            sys.exit(2)
        fail(describe_usage_error(exc))
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer 0.29 turns Ctrl-C outside a run into exit code 130
        console.print("interrupted; run the same command again to resume")
    sys.exit(code if isinstance(code, int) else 0)


def fail(message: str) -> None:
    # Text, not markup: a message quoting user input ("[1, 2") must print as written.
    console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    sys.exit(2)


def describe_usage_error(exc: Exception) -> str:
    """One line: click's message, then where to look (`medharness run --help`)."""
    text = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    return f"{text} (see `{ctx.command_path if ctx is not None else 'medharness'} --help`)"
