"""Named answer normalisations. Each metric names the one it is defined with, because the same
prediction scores differently under each (see docs/medical-vqa.md for worked examples).

- `squad`: SQuAD v1.1 `normalize_answer` (lowercase, drop ASCII punctuation, drop the articles
  a/an/the, collapse whitespace), extended for Chinese: CJK punctuation is dropped as well.
  Text without CJK characters is normalised exactly as SQuAD v1.1 does.
- `vqa_v2`: the VQA v2 evaluation script's answer processing (punctuation rule, period rule,
  lowercase, number words to digits, articles dropped, missing apostrophes restored), quirks
  included: the period rule's look-behind typo and its at-most-32 replacements.
- `llavamed`: LLaVA-Med's `normalize_word` as `run_eval.py` calls it: lowercase, then the
  `vqa_v2` processing, then every remaining comma deleted.
- `lmms_slake`: lmms-eval's SLAKE `normalize_answer`: strip, lowercase, parenthesised text
  deleted, ASCII and CJK punctuation to spaces, whitespace collapsed, "x ray"/"xray" -> "xray",
  whole-answer yes/no synonyms in English and Chinese mapped to "yes"/"no".

`word_tokens` splits a normalised string into words; each CJK character is its own word, so
Chinese answers (written without spaces) get partial credit in token metrics as in the CMRC
2018 evaluation rather than counting as one indivisible token.
"""

from __future__ import annotations

import re
import string

# Full-width and CJK punctuation, as lmms-eval's SLAKE task lists it.
CJK_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～、，。；：《》？【】（）"

# --- SQuAD v1.1 -------------------------------------------------------------------------------

_SQUAD_DROP = set(string.punctuation) | set(CJK_PUNCTUATION)
_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_DROP)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


# --- VQA v2 evaluation script -------------------------------------------------------------------

_VQA_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
_VQA_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
# The script's "(?!<=\d)" was meant as a look-behind but is a look-ahead for the text "<=" plus a
# digit, which never follows a period; so every period not followed by a digit is removed.
_VQA_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_VQA_PERIOD_MAX = 32  # the script passes re.UNICODE (= 32) where `count` goes
_VQA_NUMBERS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_VQA_ARTICLES = {"a", "an", "the"}
# The script restores apostrophes: each form below is looked up with one apostrophe missing.
_VQA_CONTRACTED = (
    "ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've "
    "hasn't haven't he'd he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've "
    "it'll ma'am mightn't mightn't've might've mustn't must've needn't not've o'clock oughtn't "
    "'ow's'at shan't she'd've should've shouldn't shouldn't've somebody'd've somebody'll "
    "somebody's someone'd someone'd've someone'll someone's something'd something'd've "
    "something'll that's there'd there'd've there're there's they'd they'd've they'll they're "
    "they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd "
    "where's where've who'd who'd've who'll who's who've why'll why're why's won't would've "
    "wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've"
).split()


def _contraction_table() -> dict[str, str]:
    table = {}
    for form in _VQA_CONTRACTED:
        cuts = [i for i, ch in enumerate(form) if ch == "'"]
        for i in cuts:
            table[form[:i] + form[i + 1:]] = form
    table["somebody'd"] = "somebodyd"  # the script maps this one the other way round
    return table


_VQA_CONTRACTIONS = _contraction_table()


def _vqa_punctuation(text: str) -> str:
    out = text
    # The test looks at the input text, not at the text as it is being rewritten.
    strip_all = _VQA_COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in _VQA_PUNCT:
        if strip_all or p + " " in text or " " + p in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _VQA_PERIOD.sub("", out, count=_VQA_PERIOD_MAX)


def _vqa_digits_articles(text: str) -> str:
    words = [_VQA_NUMBERS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in _VQA_ARTICLES]
    return " ".join(_VQA_CONTRACTIONS.get(w, w) for w in words)


def vqa_v2(text: str) -> str:
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _vqa_digits_articles(_vqa_punctuation(text))


def llavamed(text: str) -> str:
    return _vqa_digits_articles(_vqa_punctuation(text.lower())).replace(",", "")


# --- lmms-eval SLAKE ----------------------------------------------------------------------------

_SLAKE_TO_SPACE = str.maketrans({ch: " " for ch in string.punctuation + CJK_PUNCTUATION})
_SLAKE_YES = {"yes", "yeah", "yep", "true", "是", "是的", "有", "包含", "可以", "能", "会", "正常"}
_SLAKE_NO = {"no", "nope", "false", "否", "不是", "没有", "无", "不包含", "不能", "不会", "不可以", "不正常", "异常"}


def lmms_slake(text: str) -> str:
    text = text.strip().lower()
    text = re.sub(r"\([^)]*\)", " ", text)
    text = re.sub(r"（[^）]*）", " ", text)
    text = " ".join(text.translate(_SLAKE_TO_SPACE).split())
    if text in ("x ray", "xray"):
        return "xray"
    if text in _SLAKE_YES:
        return "yes"
    if text in _SLAKE_NO:
        return "no"
    return text


# --- tokens -------------------------------------------------------------------------------------

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"([{_CJK}])")


def word_tokens(normalised: str) -> list[str]:
    """Whitespace words, with every CJK character a word of its own."""
    return _CJK_CHAR.sub(r" \1 ", normalised).split()

