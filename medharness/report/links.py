"""Where each evaluation's explorer page lives, and links into it with filters set: the
leaderboard and the modality study point at the samples behind every number."""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote, urlencode


def page_name(label: str) -> str:
    """The explorer file for an evaluation label ("vqarad v2" -> explore-vqarad-v2.html)."""
    slug = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-.") or "task"
    return f"explore-{slug}.html"


def explorer_href(label: str, filters: Optional[dict[str, str]] = None) -> str:
    """A relative link to the explorer with filters in the URL fragment: {"run": run_id} shows
    one system, {"g.modality": "ct"} one group of a breakdown key."""
    return page_name(label) + ("#" + urlencode(filters, quote_via=quote) if filters else "")
