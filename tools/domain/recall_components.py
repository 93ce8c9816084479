"""Infer a recall's component from its summary, onto NHTSA's component names.

The recall data we hold is NHTSA's document index, which has no component field. A
keyword classifier reads the summary and names the NHTSA component (`AIR BAGS`,
`SERVICE BRAKES`, ...) it is most likely about; callers must label the result as
inferred. Rules are tried in order and the first that matches wins, so specific
systems come before general ones (`fuel pump` before `engine`, `seat belt` before
`seats`, `rearview camera` before `electrical system`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

UNKNOWN: Final = "UNKNOWN OR OTHER"


@dataclass(frozen=True, slots=True)
class InferredComponent:
    """The component a summary is about, and the words that decided it."""

    component: str
    matched: str | None  # the keyword found; None when nothing matched


_RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, re.compile("|".join(alternatives), re.IGNORECASE))
    for name, alternatives in (
        (
            "AIR BAGS",
            (
                r"air ?bags?",
                r"inflator",
                r"occupant classification",
                r"\bSRS\b",
                r"knee bag",
                r"curtain",
                r"impact sensor",
            ),
        ),
        (
            "SEAT BELTS",
            (
                r"seat ?belts?",
                r"belt buckle",
                r"buckle",
                r"pretensioner",
                r"belt retractor",
                r"seatbelt",
            ),
        ),
        (
            "CHILD SEAT",
            (
                r"child (?:restraint|seat)",
                r"\bLATCH\b anchor",
                r"tether anchor",
            ),
        ),
        (
            "BACK OVER PREVENTION",
            (
                r"rear ?view camera",
                r"rear[- ]?view image",
                r"backup camera",
                r"rear camera",
                r"back ?over",
                r"(?:top|surround|360)[- ]?view camera",
            ),
        ),
        (
            "FORWARD COLLISION AVOIDANCE",
            (
                r"automatic emergency braking",
                r"forward collision",
                r"\bAEB\b",
                r"pre-collision",
            ),
        ),
        ("LANE DEPARTURE", (r"lane (?:departure|keeping|keep assist)",)),
        (
            "ELECTRONIC STABILITY CONTROL",
            (
                r"stability control",
                r"\bESC\b",
                r"\bVSC\b",
            ),
        ),
        (
            "TIRES",
            (
                r"\btires?\b",
                r"tyres?",
                r"tread",
            ),
        ),
        (
            "WHEELS",
            (
                r"\bwheels? (?:nut|stud|may detach|could detach|separate)",
                r"lug nuts?",
                r"wheel studs?",
                r"hub cap",
            ),
        ),
        (
            "PARKING BRAKE",
            (
                r"parking brake",
                r"park brake",
                r"electronic parking",
            ),
        ),
        (
            "SERVICE BRAKES",
            (
                r"\bbrak(?:e|es|ing)\b",
                r"brake (?:fluid|hose|line|caliper|booster|pedal)",
                r"\bABS\b",
                r"master cylinder",
            ),
        ),
        (
            "STEERING",
            (
                r"steering",
                r"tie rod",
                r"power steering",
                r"\bEPS\b",
                r"steering column",
                r"steering wheel",
            ),
        ),
        (
            "SUSPENSION",
            (
                r"suspension",
                r"control arm",
                r"lower arm",
                r"ball joint",
                r"strut",
                r"shock absorber",
                r"coil spring",
                r"stabilizer",
            ),
        ),
        (
            "FUEL SYSTEM, DIESEL",
            (
                r"diesel (?:fuel|injection)",
                r"high[- ]pressure fuel pump.*diesel",
            ),
        ),
        (
            "FUEL SYSTEM, GASOLINE",
            (
                r"fuel (?:pump|leak|line|tank|rail|injector|hose|system|filler|vapor|feed)",
                r"gasoline",
            ),
        ),
        (
            "HYBRID PROPULSION SYSTEM",
            (
                r"hybrid (?:system|battery|propulsion)",
                r"high[- ]voltage",
                r"\bHV battery\b",
                r"inverter",
                r"traction battery",
                r"drive motor",
            ),
        ),
        (
            "ELECTRICAL SYSTEM",
            (
                r"electrical",
                r"wiring",
                r"wire harness",
                r"battery",
                r"fuse",
                r"short circuit",
                r"alternator",
                r"12[- ]?v",
                r"software",
                r"instrument (?:panel|cluster)",
                r"display",
                r"module",
                r"control unit",
            ),
        ),
        (
            "EXTERIOR LIGHTING",
            (
                r"headl(?:amp|ight)s?",
                r"tail ?l(?:amp|ight)s?",
                r"brake lights?",
                r"turn signals?",
                r"lamps?",
                r"lighting",
                r"reflector",
                r"high beams?",
                r"bulb",
            ),
        ),
        (
            "VISIBILITY",
            (
                r"wiper",
                r"windshield",
                r"defrost",
                r"mirror",
                r"sun ?visor",
                r"window",
            ),
        ),
        (
            "LATCHES/LOCKS/LINKAGES",
            (
                r"\blatch",
                r"door lock",
                r"lock(?:ing)? mechanism",
                r"hood",
                r"tailgate",
                r"liftgate",
                r"sliding door",
                r"door (?:may|could) open",
            ),
        ),
        (
            "SEATS",
            (
                r"\bseats?\b",
                r"seat (?:back|frame|recliner|track)",
                r"head ?rest",
            ),
        ),
        (
            "POWER TRAIN",
            (
                r"transmission",
                r"gear ?shift",
                r"shifter",
                r"drive ?shaft",
                r"axle",
                r"differential",
                r"transfer case",
                r"park(?:ing)? pawl",
                r"clutch",
                r"half[- ]?shaft",
                r"propeller shaft",
                r"loss of (?:drive )?(?:propulsion|motive power)",
            ),
        ),
        (
            "ENGINE AND ENGINE COOLING",
            (
                r"engine",
                r"coolant",
                r"radiator",
                r"cooling fan",
                r"oil (?:leak|pump|pan)",
                r"crankshaft",
                r"camshaft",
                r"piston",
                r"connecting rod",
                r"turbo",
            ),
        ),
        (
            "VEHICLE SPEED CONTROL",
            (
                r"cruise control",
                r"accelerator",
                r"throttle",
                r"speed control",
                r"unintended acceleration",
            ),
        ),
        (
            "STRUCTURE",
            (
                r"frame",
                r"body (?:panel|mount)",
                r"structur",
                r"weld",
                r"bumper",
                r"underbody",
                r"tow hook",
                r"trailer hitch",
            ),
        ),
        (
            "EQUIPMENT",
            (
                r"label",
                r"owner'?s manual",
                r"certification",
                r"placard",
                r"tire pressure label",
                r"jack",
            ),
        ),
    )
)


def infer_component(summary: str | None) -> InferredComponent:
    """Return the NHTSA component a recall summary is most likely about.

    Args:
        summary: NHTSA's summary of a recall document (may be empty).

    Returns:
        The first rule that matches, or `UNKNOWN OR OTHER` with no keyword.
    """
    text = " ".join((summary or "").split())
    for name, pattern in _RULES:
        found = pattern.search(text)
        if found is not None:
            return InferredComponent(name, found.group(0).lower())
    return InferredComponent(UNKNOWN, None)
