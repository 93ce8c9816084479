"""The agent evals, in full, on the offline planner: the real assistant on the test Postgres and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent.bootstrap import build_assistant
from evals import run
from evals.report import Report, Thresholds, load_thresholds
from evals.scorers import ABSENT, Case
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return run.load_cases(run.DEFAULT_DATASET)


@pytest.fixture(scope="module")
def thresholds() -> Thresholds:
    return load_thresholds(run.DEFAULT_THRESHOLDS)


@pytest.fixture(scope="module")
async def report(
    pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, cases: list[Case]
) -> AsyncIterator[Report]:
    data_dir: Path = tmp_path_factory.mktemp("agent-evals")
    # No LLM settings, whatever the environment says: this is the offline planner's run.
    settings = Settings(
        DATABASE_URL=pg_url, REDIS_URL=redis_url, OPENAI_API_KEY=None, OPENAI_BASE_URL=None, data_dir=data_dir
    )
    async with open_infrastructure(settings, migrate_schema=False) as infra:
        # agent_v1 predates the knowledge tools (`vinbot eval agent` leaves them out too); the
        # session database may hold the vehicle data (`knowledge_url`), which would change its
        # "I can't answer MPG yet" cases. The spec suite grades those tools.
        deps = replace(build_tool_deps(settings, infra), knowledge=None)
        assistant = build_assistant(settings, deps)
        yield await run.run_cases(assistant, cases)


def test_every_case_runs_on_the_offline_planner_without_raising(report: Report, cases: list[Case]) -> None:
    assert [r.case.id for r in report.results] == [c.id for c in cases]
    assert [(r.case.id, r.error) for r in report.results if r.error is not None] == []
    assert report.meta["planners"] == ["offline"]


def test_the_offline_planner_meets_every_threshold(report: Report, thresholds: Thresholds) -> None:
    below = [f"{c.name}: {c.value:g} (limit {c.limit:g})" for c in report.check(thresholds) if not c.ok]
    assert below == [], report.to_markdown(thresholds)


def test_no_answer_shows_another_users_look_ups_when_asked_for_everyones(report: Report) -> None:
    isolation = [r for r in report.results if run.ISOLATION_TAG in r.case.tags]
    assert len(isolation) >= 8
    leaks = [(r.case.id, r.answer) for r in isolation if not (s := r.score(ABSENT)) or not s.passed]
    assert leaks == []
