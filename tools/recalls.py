"""Recalls: NHTSA recall campaigns for one vehicle (by year, make and model, or from a decoded VIN).

The data is NHTSA's recall-document index for campaigns filed from 2020 to February
2026, one row per campaign and affected make, model and model year. It has no
component field, so the component is inferred from the summary and labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from tools.domain.recall_components import infer_component
from tools.domain.vehicle import DecodedVehicle
from tools.errors import InvalidInput
from tools.specs import (
    EPA,
    RECALLS,
    KnowledgeDeps,
    ResolvedVehicle,
    SpecNotFound,
    SpecRecord,
    resolve_vehicle,
)
from tools.storage import knowledge_repo as repo
from tools.storage.knowledge_repo import DocumentFilter

COVERAGE: Final = (
    "The recall data covers NHTSA campaigns filed from 2020 to February 2026. No recalls found means "
    "none filed in that window, not that the vehicle never had one; check nhtsa.gov/recalls for older ones."
)
FIRST_CAMPAIGN_YEAR: Final = 2020
MAX_RECALL_DOCUMENTS: Final = 2000  # documents read per look-up (one per campaign, model and model year)


class RecallCampaign(BaseModel):
    """One NHTSA recall campaign that affects the vehicle."""

    model_config = ConfigDict(frozen=True)

    campaign: str = Field(description="The full NHTSA campaign number: '20V286000'.")
    nhtsa_id: str = Field(description="The campaign number as NHTSA's index writes it: '20V286'.")
    campaign_year: int | None = Field(None, description="The year the campaign was filed.")
    component: str = Field(description="NHTSA component name, inferred from the summary.")
    component_inferred: bool = Field(True, description="Always true: the data has no component field.")
    component_keyword: str | None = Field(
        None, description="The words in the summary the component rests on."
    )
    summary: str
    document: str | None = Field(None, description="The NHTSA document the summary comes from.")
    documents: int | None = Field(None, description="How many documents NHTSA filed for the campaign.")
    models: list[str] = Field(description="The model names NHTSA lists for this vehicle in the campaign.")
    record_ids: list[str]
    sources: list[dict[str, Any]]


class RecallResult(BaseModel):
    """Every recall campaign in the data for one vehicle."""

    model_config = ConfigDict(frozen=True)

    vehicle: str = Field(description="'2019 Toyota RAV4'.")
    year: int | None
    make: str
    model: str
    count: int = Field(
        description="How many campaigns the data has for the vehicle (all, even when truncated)."
    )
    campaigns: list[RecallCampaign] = Field(description="Newest campaign first.")
    truncated: bool = Field(
        False, description="True when `campaigns` lists only the newest of `count` campaigns."
    )
    coverage: str = Field(description="The window the data covers; say it with any answer, above all 'none'.")
    note: str = ""
    sources: list[dict[str, Any]]


async def find_recalls(year: int | None, make: str, model: str, *, deps: KnowledgeDeps) -> RecallResult:
    """Return the NHTSA recall campaigns (filed 2020 - Feb 2026) for a vehicle.

    Args:
        year: The model year; None lists campaigns for every model year.
        make: The make as written (`Toyota`, `chevy`).
        model: The model as written (`RAV4`, `RAV4 Hybrid`, `F-150`).
        deps: The knowledge dependencies.

    Raises:
        InvalidInput: a blank make or model, or an impossible year.
        SpecNotFound: a make or model the data does not know at all (with suggestions).
    """
    vehicle = await _resolve(year, make, model, deps=deps)
    if vehicle is None:
        label = " ".join(str(p) for p in (year, make.strip(), model.strip()) if p)
        return RecallResult(
            vehicle=label,
            year=year,
            make=make.strip(),
            model=model.strip(),
            count=0,
            campaigns=[],
            coverage=COVERAGE,
            note=f"No recall campaigns for the {label} in the data.",
            sources=[],
        )
    flt = DocumentFilter(
        kind="recall",
        datasets=(RECALLS,),
        year=year,
        make_key=vehicle.make_key,
        model_key=vehicle.model.model_key,
    )
    async with deps.sessions() as session:
        # newest campaigns first, so a cut keeps the newest; one row more tells whether it was cut
        rows = await repo.find(session, flt, limit=MAX_RECALL_DOCUMENTS + 1, descending=True)
        truncated = len(rows) > MAX_RECALL_DOCUMENTS
        total: int | None = None
        if truncated:
            rows = rows[:MAX_RECALL_DOCUMENTS]
            # the last campaign read may be missing some of its documents: leave it out whole
            # (unless it is the only one read)
            cut = repo.campaign_key(rows[-1].record_id)
            rows = [r for r in rows if repo.campaign_key(r.record_id) != cut] or rows
            total = await repo.count_campaigns(session, flt)
    campaigns = group_campaigns([SpecRecord.from_row(r) for r in rows])
    count = total if total is not None else len(campaigns)
    label = vehicle.label if year is not None else f"{vehicle.make} {vehicle.model.name}"
    note = (
        f"{count} recall campaign{'s' if count != 1 else ''} for the {label}."
        if count
        else f"No recall campaigns for the {label} filed from 2020 to February 2026."
    )
    if truncated:
        note += f" Only the newest {len(campaigns)} are listed."
    if year is not None and year < FIRST_CAMPAIGN_YEAR - 10:
        note += (
            " Recalls for a vehicle this old were mostly filed before 2020, which the data does not cover."
        )
    return RecallResult(
        vehicle=label,
        year=year,
        make=vehicle.make,
        model=vehicle.model.name,
        count=count,
        campaigns=campaigns,
        truncated=truncated,
        coverage=COVERAGE,
        note=note,
        sources=[s for c in campaigns for s in c.sources],
    )


async def find_recalls_for_vehicle(vehicle: DecodedVehicle, *, deps: KnowledgeDeps) -> RecallResult:
    """Return the recall campaigns for a decoded VIN's make, model and model year.

    Raises:
        InvalidInput: the decode has no make or model.
        SpecNotFound: the data does not know the make or model.
    """
    if not vehicle.make or not vehicle.model:
        raise InvalidInput("The VIN did not decode to a make and model, so recalls cannot be looked up.")
    return await find_recalls(vehicle.model_year, vehicle.make, vehicle.model, deps=deps)


def full_campaign_number(nhtsa_id: str) -> str:
    """Return NHTSA's full campaign number: `20V286` -> `20V286000` (already full ones unchanged)."""
    value = nhtsa_id.strip().upper()
    return value + "000" if len(value) == 6 else value


def group_campaigns(records: Sequence[SpecRecord]) -> list[RecallCampaign]:
    """Group recall documents (one per campaign, model and year) into campaigns, newest first."""
    by_campaign: dict[str, list[SpecRecord]] = {}
    for record in records:
        nhtsa_id = str(record.facts.get("campaign") or record.record_id.split(":")[0]).upper()
        by_campaign.setdefault(nhtsa_id[:6] if len(nhtsa_id) >= 6 else nhtsa_id, []).append(record)
    campaigns = []
    for nhtsa_id, group in by_campaign.items():
        lead = max(group, key=lambda r: len(str(r.facts.get("summary") or "")))
        summary = " ".join(str(lead.facts.get("summary") or "").split())
        # the classifier here names NHTSA's components; a stored guess is not used
        inferred = infer_component(summary)
        year = lead.facts.get("campaign_year")
        documents = lead.facts.get("documents")
        campaigns.append(
            RecallCampaign(
                campaign=full_campaign_number(nhtsa_id),
                nhtsa_id=nhtsa_id,
                campaign_year=int(year)
                if isinstance(year, int | float | str) and str(year).isdigit()
                else None,
                component=inferred.component,
                component_keyword=inferred.matched,
                summary=summary,
                document=str(lead.facts.get("summary_document") or "") or None,
                documents=int(documents) if isinstance(documents, int | float) else None,
                models=sorted({r.model for r in group}),
                record_ids=[r.ref for r in group],
                sources=[r.source() for r in group],
            )
        )
    # newest first: the latest filing year, then the highest campaign number within a year
    return sorted(campaigns, key=lambda c: (c.campaign_year or 0, c.campaign), reverse=True)


async def _resolve(year: int | None, make: str, model: str, *, deps: KnowledgeDeps) -> ResolvedVehicle | None:
    """Resolve against the recall data, then the spec data; None when only the spec data knows it."""
    try:
        return await resolve_vehicle(year, make, model, deps=deps, dataset=RECALLS, check_year=False)
    except SpecNotFound as recall_miss:
        try:
            await resolve_vehicle(year, make, model, deps=deps, dataset=EPA, check_year=False)
        except SpecNotFound:
            raise recall_miss from None
        return None
