"""The job summary counts every decoded input line, duplicates included, by the real SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tools.storage import job_repo
from tools.storage.models import Job, JobItem, JobResult
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
        honda, tesla = ("HONDA", 2003), ("TESLA", 2019)
        rows = [
            (1, "pending", honda, None),
            (2, "pending", tesla, None),
            (3, "pending", None, 1),
            (4, "pending", None, 1),
            (5, "invalid", None, None),
            (6, "pending", (None, None), None),
        ]
        await session.execute(
            insert(JobItem),
            [
                {"job_id": "f" * 32, "line": line, "input": "x", "state": state, "dup_of": dup}
                for line, state, _, dup in rows
            ],
        )
        await session.execute(
            insert(JobResult),
            [
                {
                    "job_id": "f" * 32,
                    "line": line,
                    "layout": job_repo.RESULT_LAYOUT_VERSION,
                    "make": result[0],
                    "model_year": result[1],
                    "cells": "",
                }
                for line, _, result, _ in rows
                if result is not None
            ],
        )
        assert await job_repo.summary_counts(session, "f" * 32, limit=10) == {
            "make": [("HONDA", 3), ("TESLA", 1)],
            "model_year": [("2003", 3), ("2019", 1)],
            "vehicle_type": [],
        }
        assert await job_repo.summary_counts(session, "f" * 32, limit=1) == {
            "make": [("HONDA", 3)],
            "model_year": [("2003", 3)],
            "vehicle_type": [],
        }
