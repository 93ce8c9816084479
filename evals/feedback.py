"""Export users' 👍/👎 ratings of answers as eval cases (JSONL), for review and the agent dataset.

    vinbot eval export-feedback [--out FILE] [--rating up|down|all] [--since YYYY-MM-DD]

Each rated answer becomes one case in the harness's format (`evals.scorers.Case`):
the question as its one turn, the tool calls the assistant made as the expected
trajectory (`unordered`), the answer's language, and tags saying where the rating
came from. A 👍 case pins what the assistant did; a 👎 case is tagged `needs-review`
and carries the answer in its note, so a person can write the expected facts before
adding it to a dataset. Nothing else about the user is exported.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from evals.scorers import Case
from tools.bootstrap import open_infrastructure
from tools.settings import Settings, get_settings
from tools.storage import feedback_repo
from tools.storage.feedback_repo import RatedTurn

EXIT_OK, EXIT_USAGE = 0, 2
NOTE_CHARS = 500
_RATINGS = {"up": 1, "down": -1, "all": None}
_LANGUAGES = ("en", "es", "fr", "de")


def to_case(turn: RatedTurn) -> Case:
    """Return the eval case of one rated answer."""
    digest = hashlib.sha256(f"{turn.feedback_id}:{turn.question}".encode()).hexdigest()[:10]
    good = turn.rating > 0
    language = turn.language if turn.language in _LANGUAGES else None
    tags = ["feedback", f"feedback-{'up' if good else 'down'}", turn.channel]
    if not good:
        tags.append("needs-review")
    expected: dict[str, Any] = {
        "trajectory": [
            {"name": c["name"], "args": c.get("args") or {}} for c in turn.tool_calls if c.get("name")
        ],
        "match": "unordered",
        "language": language,
    }
    note = f"rated {'👍' if good else '👎'} on {turn.rated_at:%Y-%m-%d}; planner {turn.planner or '?'}"
    if not good:
        note += f"; the rated answer: {turn.answer[:NOTE_CHARS]}"
    return Case.model_validate(
        {
            "id": f"feedback-{turn.feedback_id}-{digest}",
            "turns": [turn.question],
            "expected": expected,
            "tags": tags,
            "note": note,
        }
    )


async def export(settings: Settings, out: TextIO, *, rating: int | None, since: datetime | None) -> int:
    """Write one JSON case per rated answer to `out`; return how many."""
    count = 0
    async with open_infrastructure(settings) as infra, infra.sessions() as session:
        async for turn in feedback_repo.iter_rated_turns(session, since=since, rating=rating):
            if not turn.question.strip():
                continue  # the question was deleted (/forget) or never stored
            out.write(
                json.dumps(to_case(turn).model_dump(mode="json", exclude_none=True), ensure_ascii=False)
            )
            out.write("\n")
            count += 1
    return count


def main(argv: Sequence[str], *, settings: Settings | None = None) -> int:
    """Run the export (the entry function of `vinbot eval export-feedback`)."""
    parser = argparse.ArgumentParser(prog="vinbot eval export-feedback", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSONL here (default: standard output)")
    parser.add_argument("--rating", choices=sorted(_RATINGS), default="all")
    parser.add_argument("--since", type=datetime.fromisoformat, help="only ratings on or after this date")
    args = parser.parse_args(list(argv))
    settings = settings or get_settings()
    since = args.since.replace(tzinfo=args.since.tzinfo or UTC) if args.since else None
    if args.out is None:
        count = asyncio.run(export(settings, sys.stdout, rating=_RATINGS[args.rating], since=since))
    else:
        with args.out.open("w", encoding="utf-8") as handle:
            count = asyncio.run(export(settings, handle, rating=_RATINGS[args.rating], since=since))
    print(f"exported {count} rated answers", file=sys.stderr)  # noqa: T201 - a command's summary
    return EXIT_OK
