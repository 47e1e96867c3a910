"""The Java half of the COCO caption evaluation: the PTB tokenizer and the METEOR scorer.

Both use the jars that ship with pycocoevalcap, with the same command lines and the same
protocol as its wrappers, so the numbers are pycocoevalcap's. What differs is lifetime and
safety: METEOR (about 10 s to start) is started once per process and reused; tokenised
texts are cached, so scoring each group of a run after the whole run costs no new Java start;
every line break Java would honour is turned into a space first (pycocoevalcap only replaces
"\\n", and one stray "\\r" shifts every later caption onto the wrong sample); and a tokenizer
that returns the wrong number of lines is an error, never a silent misalignment.
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Optional, Sequence

from pycocoevalcap.meteor import meteor as _meteor_module
from pycocoevalcap.tokenizer import ptbtokenizer as _ptb_module

TOKENIZER_JAR = Path(_ptb_module.__file__).with_name(_ptb_module.STANFORD_CORENLP_3_4_1_JAR)
METEOR_JAR = Path(_meteor_module.__file__).with_name(_meteor_module.METEOR_JAR)
PUNCTUATIONS = frozenset(_ptb_module.PUNCTUATIONS)

# Every character Python treats as a line boundary; Java's tokenizer breaks lines at \n, \r,
# \x0b, \x0c, U+2028 and U+2029, and the rest are harmless as spaces.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class JavaUnavailable(RuntimeError):
    """No `java` on PATH."""


class JavaScorerError(RuntimeError):
    """A Java scorer failed or answered out of step."""


def one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def java_available() -> bool:
    return shutil.which("java") is not None


def require_java() -> None:
    if not java_available():
        raise JavaUnavailable("no `java` on PATH")


_token_cache: dict[str, str] = {}
_token_lock = threading.Lock()


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """PTB-tokenise (lowercased, punctuation tokens removed) as pycocoevalcap's PTBTokenizer
    does; texts not seen before in this process go to one Java call together."""
    lines = [one_line(t) for t in texts]
    with _token_lock:
        missing = sorted({line for line in lines if line not in _token_cache})
        if missing:
            _token_cache.update(zip(missing, _run_tokenizer(missing)))
        return [_token_cache[line] for line in lines]


def _run_tokenizer(lines: list[str]) -> list[str]:
    require_java()
    with tempfile.TemporaryDirectory(prefix="medharness-ptb-") as tmp:
        source = Path(tmp) / "captions.txt"
        source.write_text("\n".join(lines), encoding="utf-8")
        cmd = ["java", "-cp", str(TOKENIZER_JAR), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(source)]
        done = subprocess.run(cmd, capture_output=True)
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise JavaScorerError(f"PTB tokenizer exited with {done.returncode}: {tail[0]}")
    # With -preserveLines Java writes exactly the input's line breaks, so the counts must agree.
    out = done.stdout.decode("utf-8").split("\n")
    if len(out) != len(lines):
        raise JavaScorerError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} captions")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in out]


class MeteorProcess:
    """One METEOR 1.5 process in pycocoevalcap's `-stdio` mode, serving many corpora."""

    def __init__(self) -> None:
        require_java()
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            ["java", "-jar", "-Xmx2G", METEOR_JAR.name, "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=METEOR_JAR.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def corpus_score(self, references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> float:
        """Corpus METEOR over tokenised texts, as pycocoevalcap's Meteor.compute_score."""
        with self._lock:
            stats = [self._ask(_score_line(refs, hyp)) for refs, hyp in zip(references, hypotheses)]
            self._send("EVAL ||| " + " ||| ".join(stats))
            for _ in stats:  # per-segment scores, not needed
                self._read()
            return float(self._read())

    def _ask(self, line: str) -> str:
        self._send(line)
        return self._read()

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write((line + "\n").encode("utf-8"))
            self._proc.stdin.flush()
        except OSError as exc:
            raise JavaScorerError(f"METEOR stopped: {self._last_error() or exc}") from None

    def _read(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode("utf-8").strip()
        if not line:
            raise JavaScorerError(f"METEOR stopped: {self._last_error() or 'no answer'}")
        return line

    def _last_error(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.kill()
        self._proc.wait()
        self._stderr.close()


def _score_line(references: Sequence[str], hypothesis: str) -> str:
    # pycocoevalcap's Meteor._stat, verbatim in effect; "|||" cannot survive PTB tokenising.
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    return " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))


_meteor: Optional[MeteorProcess] = None
_meteor_lock = threading.Lock()


def meteor_corpus(references: Sequence[Sequence[str]], hypotheses: Sequence[str]) -> float:
    """Corpus METEOR using the process-wide METEOR server (started on first use; a server
    that failed is replaced on the next call)."""
    global _meteor
    with _meteor_lock:
        if _meteor is None or not _meteor.alive():
            _meteor = MeteorProcess()
        server = _meteor
    try:
        return server.corpus_score(references, hypotheses)
    except (JavaScorerError, ValueError):
        shutdown_meteor()
        raise


def shutdown_meteor() -> None:
    global _meteor
    with _meteor_lock:
        if _meteor is not None:
            _meteor.close()
            _meteor = None


atexit.register(shutdown_meteor)
