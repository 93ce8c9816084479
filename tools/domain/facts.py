"""The vehicle facts our data can answer, and the ones it cannot.

This registry is the contract between ingestion (which writes `VehicleDocument.facts`
under these keys), the spec, comparison and recall capabilities (which read them) and
the agent (which names them in answers). A question about anything in `UNAVAILABLE`
gets "the data has no such field", never a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Dataset = Literal["epa", "epa-test-cars", "nhtsa-recalls"]
Better = Literal["higher", "lower", "none"]

DATASET_TITLES: Final[dict[str, str]] = {
    "epa": "EPA/DOE fuel economy (fueleconomy.gov vehicles.csv)",
    "epa-test-cars": "EPA Test Car List (data on cars used for testing fuel economy)",
    "nhtsa-recalls": "NHTSA recalls (campaigns filed 2020 and later)",
}


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact a spec document may carry in `facts`."""

    key: str
    label: str  # English label; the agent translates through its catalogue
    unit: str  # "" for counts, scores and text
    dataset: Dataset
    better: Better = "none"  # which way is better, for comparisons
    compare: bool = False  # one of "the differences that matter" in a comparison


FACTS: Final[tuple[Fact, ...]] = (
    # EPA fuel economy (fuelType1; MPGe for electric vehicles)
    Fact("city_mpg", "city MPG", "mpg", "epa", "higher", True),
    Fact("highway_mpg", "highway MPG", "mpg", "epa", "higher", True),
    Fact("combined_mpg", "combined MPG", "mpg", "epa", "higher", True),
    # on fuelType2: E85 for flex-fuel vehicles, electricity (MPGe) for plug-in hybrids
    Fact("city_mpg_alt", "city MPG on the second fuel", "mpg", "epa", "higher"),
    Fact("highway_mpg_alt", "highway MPG on the second fuel", "mpg", "epa", "higher"),
    Fact("combined_mpg_alt", "combined MPG on the second fuel", "mpg", "epa", "higher"),
    Fact("co2_gpm", "tailpipe CO2", "g/mi", "epa", "lower", True),
    Fact("annual_fuel_cost_usd", "annual fuel cost", "USD", "epa", "lower", True),
    Fact("five_year_savings_usd", "5-year fuel savings vs. the average car", "USD", "epa", "higher"),
    Fact("fe_score", "EPA fuel economy score (1-10)", "", "epa", "higher"),
    Fact("ghg_score", "EPA greenhouse gas score (1-10)", "", "epa", "higher"),
    Fact("range_mi", "electric range", "mi", "epa", "higher", True),
    Fact("range_city_mi", "electric range, city", "mi", "epa", "higher"),
    Fact("range_highway_mi", "electric range, highway", "mi", "epa", "higher"),
    Fact("phev_electric_range_mi", "electric range of the plug-in hybrid", "mi", "epa", "higher"),
    Fact("kwh_per_100mi", "electricity use", "kWh/100 mi", "epa", "lower"),
    Fact("charge_hours_240v", "charging time at 240 V", "h", "epa", "lower"),
    Fact("passenger_volume_cuft", "passenger volume", "cu ft", "epa", "higher", True),
    Fact("luggage_volume_cuft", "luggage volume", "cu ft", "epa", "higher", True),
    Fact("ev_motor", "electric motor", "", "epa"),
    Fact("atv_type", "alternative fuel or technology", "", "epa"),
    Fact("turbo", "turbocharged", "", "epa"),
    Fact("supercharged", "supercharged", "", "epa"),
    Fact("start_stop", "start-stop system", "", "epa"),
    Fact("gas_guzzler", "gas-guzzler tax", "", "epa"),
    # EPA test cars
    Fact("horsepower", "rated horsepower", "hp", "epa-test-cars", "higher", True),
    Fact("test_weight_lbs", "EPA equivalent test weight (not curb weight)", "lb", "epa-test-cars"),
    Fact("axle_ratio", "axle ratio", "", "epa-test-cars"),
    Fact("gears", "number of gears", "", "epa-test-cars"),
    # NHTSA recalls
    Fact("campaign", "NHTSA campaign number", "", "nhtsa-recalls"),
    Fact("component", "component (inferred from the summary)", "", "nhtsa-recalls"),
    Fact("summary", "recall summary", "", "nhtsa-recalls"),
    Fact("summary_document", "summary document", "", "nhtsa-recalls"),
    Fact("documents", "documents in the campaign", "", "nhtsa-recalls"),
    Fact("campaign_year", "year the campaign was filed", "", "nhtsa-recalls"),
)
FACTS_BY_KEY: Final[dict[str, Fact]] = {f.key: f for f in FACTS}

# What people ask about that none of our datasets holds. The answer says so.
UNAVAILABLE: Final[dict[str, str]] = {
    "towing_capacity": "towing capacity",
    "payload": "payload",
    "curb_weight": "curb weight",
    "dimensions": "exterior dimensions",
    "seating": "seating capacity",
    "torque": "torque",
    "msrp": "price (MSRP)",
    "crash_rating": "crash-test ratings",
    "recalls_before_2020": "recalls filed before 2020",
}
