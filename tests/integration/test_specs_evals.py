"""The spec suite on the offline planner, against the test database with the real data ingested.

`knowledge_url` (tests/conftest.py) is the test server's database with the EPA, EPA
test-car and NHTSA recall files ingested; the suite's cases were computed from the
same files by `evals/build_specs_dataset.py`, so the answers are checked against the
data, not against the code under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.bootstrap import build_assistant
from evals import specs_run
from evals.build_specs_dataset import build, load
from evals.scorers import SPEC_REFUSAL, SpecCase
from evals.specs_run import SpecReport, SpecThresholds
from tools.bootstrap import build_tool_deps, open_infrastructure
from tools.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cases() -> list[SpecCase]:
    return specs_run.load_spec_cases(specs_run.DEFAULT_DATASET)


@pytest.fixture(scope="module")
def thresholds() -> SpecThresholds:
    return specs_run.load_spec_thresholds(specs_run.DEFAULT_THRESHOLDS)


@pytest.fixture(scope="module")
async def report(
    knowledge_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, cases: list[SpecCase]
) -> AsyncIterator[SpecReport]:
    data_dir: Path = tmp_path_factory.mktemp("spec-evals")
    # No LLM settings, whatever the environment says: this is the offline planner's run.
    settings = Settings(
        DATABASE_URL=knowledge_url,
        REDIS_URL=redis_url,
        OPENAI_API_KEY=None,
        OPENAI_BASE_URL=None,
        data_dir=data_dir,
    )
    async with open_infrastructure(settings, migrate_schema=False) as infra:
        assistant = build_assistant(settings, build_tool_deps(settings, infra))
        yield await specs_run.run_spec_cases(assistant, cases)


def test_the_committed_dataset_is_what_the_generator_builds_from_the_data(
    shared_data: Path, cases: list[SpecCase]
) -> None:
    built = [SpecCase.model_validate(c) for c in build(load(shared_data))]
    assert built == cases
    assert len(cases) >= 150
    assert {c.language for c in cases} == {"en", "es", "fr", "de"}


def test_every_case_runs_on_the_offline_planner_without_raising(
    report: SpecReport, cases: list[SpecCase]
) -> None:
    assert [r.case.id for r in report.results] == [c.id for c in cases]
    assert [(r.case.id, r.error) for r in report.results if r.error is not None] == []
    assert report.meta["planners"] == ["offline"]


def test_the_offline_planner_meets_the_issue_goals(report: SpecReport, thresholds: SpecThresholds) -> None:
    below = [f"{c.name}: {c.value:g} (limit {c.limit:g})" for c in report.check(thresholds) if not c.ok]
    assert below == [], report.to_markdown(thresholds)


def test_no_refusal_shows_an_invented_number(report: SpecReport) -> None:
    refusals = [r for r in report.results if r.case.expected.refusal]
    assert len(refusals) >= 20
    failed = [(r.case.id, r.answer) for r in refusals if not (s := r.score(SPEC_REFUSAL)) or not s.passed]
    assert failed == []


def test_answers_cite_their_sources_and_comparisons_attach_a_chart(report: SpecReport) -> None:
    answered = [r for r in report.results if r.case.kind in ("spec", "recall", "compare") and r.passed]
    assert answered
    assert all(r.sources > 0 for r in answered)
    compared = [r for r in report.results if r.case.kind == "compare" and r.passed]
    assert compared
    assert all(r.attachments == 1 for r in compared)
