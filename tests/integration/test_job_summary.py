"""The job summary counts every decoded input line, duplicates included, by the real SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tools.storage import job_repo
from tools.storage.models import Job, JobItem
from tools.storage.session import transaction
from tools.storage.user_repo import get_or_create_user

pytestmark = pytest.mark.integration


async def test_duplicates_count_with_their_first_line_when_the_summary_groups_by_make(db_sessions) -> None:
    async with transaction(db_sessions) as session:
        user = await get_or_create_user(session, "test:summary")
        await session.execute(
            insert(Job).values(
                id="f" * 32,
                user_id=user.id,
                channel="test",
                status="done",
                source_name=None,
                lines=6,
                invalid=1,
                unique_vins=3,
                chunk_size=500,
                chunks=1,
            )
        )
        honda, tesla = {"make": "HONDA", "model_year": 2003}, {"make": "TESLA", "model_year": 2019}
        rows = [
            (1, "done", honda, None),
            (2, "done", tesla, None),
            (3, "dup", None, 1),
            (4, "dup", None, 1),
            (5, "invalid", None, None),
            (6, "done", {"make": None}, None),
        ]
        await session.execute(
            insert(JobItem),
            [
                {
                    "job_id": "f" * 32,
                    "line": line,
                    "input": "x",
                    "state": state,
                    "result": result,
                    "dup_of": dup,
                }
                for line, state, result, dup in rows
            ],
        )
        assert await job_repo.counts_by(session, "f" * 32, "make", limit=10) == [("HONDA", 3), ("TESLA", 1)]
        assert await job_repo.counts_by(session, "f" * 32, "model_year", limit=1) == [("2003", 3)]
