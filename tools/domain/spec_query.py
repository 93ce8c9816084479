"""Read structured filters out of a free-text vehicle question (English, Spanish, French, German).

`parse_question` finds the vehicles a question names (model year, make, model and the
configuration words next to them), the fuel, class and drive it filters on, the facts
it asks about (keys of `tools.domain.facts.FACTS`, plus the descriptive columns in
`DESCRIPTIVE`) and the fields no dataset holds (keys of `UNAVAILABLE`). Makes and
models are recognised against a `Vocabulary` that the spec capability loads from the
database; nothing here does I/O.

Matching works on folded text: lower case, accents stripped (`autonomía` ->
`autonomia`, `Kofferraum` stays), `ß` -> `ss`. A model is found as one to three
adjacent tokens whose letters and digits form its `model_key` (`CR-V`, `cr v` ->
`crv`; `Model 3` -> `model3`). Model names that are also common words or bare
numbers (`Fit`, `IS`, `3`, `1500`) count only right after their make.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar

from tools.domain.facts import FACTS_BY_KEY, UNAVAILABLE
from tools.domain.names import make_key as normalise_make
from tools.domain.names import model_key as normalise_model

FuelKind = Literal["electric", "plug-in hybrid", "hybrid", "diesel", "flex-fuel", "cng", "hydrogen"]
ClassKind = Literal["suv", "pickup", "car", "minivan", "van", "wagon", "two-seater"]
DriveKind = Literal["awd", "fwd", "rwd"]

K = TypeVar("K", bound=str)

MAX_QUESTION_CHARS: Final = 2000  # longer questions are read up to here
MAX_TERMS: Final = 24

# Facts that are columns of a spec document rather than entries of `facts`.
DESCRIPTIVE: Final[dict[str, str]] = {
    "engine": "engine",
    "transmission": "transmission",
    "drive": "drive",
    "fuel": "fuel",
    "vehicle_class": "EPA size class",
}

_YEAR = re.compile(r"(?<![\w.])(19[0-9]\d|20[0-9]\d)(?![\w.])")
_DISPLACEMENT = re.compile(r"(?<![\w.])(\d{1,2}\.\d)\s?(?:l|liter|litre|liters|litres|litros?)?(?![\w.])")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-/][a-z0-9]+)*")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def words(text: str) -> frozenset[str]:
    """Return the whitespace-separated words of `text` as a set (for word lists kept as prose)."""
    return frozenset(text.split())


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# ---------------------------------------------------------------- fuel, class, drive
_FUELS: Final[tuple[tuple[FuelKind, re.Pattern[str]], ...]] = (
    ("plug-in hybrid", _rx(r"plug[- ]?in", r"\bphevs?\b", r"enchufable", r"rechargeable", r"steckdose")),
    (
        "hydrogen",
        _rx(
            r"hydrogen",
            r"fuel[- ]cell",
            r"\bfcevs?\b",
            r"hidrogeno",
            r"hydrogene",
            r"wasserstoff",
            r"brennstoff",
        ),
    ),
    ("hybrid", _rx(r"\bhybrid\w*", r"\bhibrid\w*", r"\bhybride\w*", r"\bhevs?\b")),
    (
        "electric",
        _rx(
            r"\belectric\b",
            r"\bevs?\b",
            r"\bbevs?\b",
            r"\belectric[oa]s?\b",
            r"\belectriques?\b",
            r"\belektro\w*",
            r"\be-autos?\b",
            r"battery[- ]powered",
        ),
    ),
    ("diesel", _rx(r"\bdiesel\w*", r"\btdi\b")),
    (
        "flex-fuel",
        _rx(r"\be85\b", r"flex[- ]?fuel", r"\bffvs?\b", r"\bflex\b", r"\bethanol\b", r"\betanol\b"),
    ),
    ("cng", _rx(r"\bcng\b", r"natural gas", r"gas natural", r"gaz naturel", r"\berdgas\b", r"\bgnv\b")),
)

_CLASSES: Final[tuple[tuple[ClassKind, re.Pattern[str]], ...]] = (
    ("minivan", _rx(r"mini[- ]?vans?", r"\bmpvs?\b", r"monovolumen", r"monospace", r"\bvan familiar")),
    (
        "suv",
        _rx(
            r"\bsuvs?\b",
            r"sport[- ]utility",
            r"crossovers?",
            r"todoterrenos?",
            r"tout[- ]terrain",
            r"gelandewagen",
        ),
    ),
    ("pickup", _rx(r"pick[- ]?ups?", r"\btrucks?\b", r"\bpritschenwagen\b", r"\bcamionnettes?\b")),
    ("wagon", _rx(r"wagons?\b", r"\bestate\b", r"\bkombis?\b", r"\bbreak\b", r"\bfamiliar\b")),
    ("van", _rx(r"\bvans?\b", r"furgonetas?", r"\bfourgons?\b", r"kastenwagen", r"transporter")),
    (
        "two-seater",
        _rx(r"two[- ]seaters?", r"\broadsters?\b", r"sports? cars?", r"sportwagen", r"deportivos?"),
    ),
    (
        "car",
        _rx(
            r"\bsedans?\b",
            r"\bsaloons?\b",
            r"\bberlines?\b",
            r"\blimousinen?\b",
            r"\bhatchbacks?\b",
            r"\bcoupes?\b",
        ),
    ),
)

_DRIVES: Final[tuple[tuple[DriveKind, re.Pattern[str]], ...]] = (
    (
        "awd",
        _rx(
            r"\bawd\b",
            r"all[- ]wheel",
            r"\b4wd\b",
            r"\b4x4\b",
            r"four[- ]wheel[- ]drive",
            r"4[- ]wheel[- ]drive",
            r"traccion (?:integral|total|a las cuatro|4x4)",
            r"integrale",
            r"quatre roues motrices",
            r"allrad\w*",
            r"\b4matic\b",
            r"\bxdrive\b",
            r"\bquattro\b",
            r"\b4motion\b",
        ),
    ),
    (
        "fwd",
        _rx(
            r"\bfwd\b",
            r"front[- ]wheel",
            r"traccion delantera",
            r"traction avant",
            r"\btraction\b",
            r"frontantrieb",
            r"vorderrad\w*",
            r"\b2wd\b",
        ),
    ),
    (
        "rwd",
        _rx(
            r"\brwd\b",
            r"rear[- ]wheel",
            r"traccion trasera",
            r"\bpropulsion\b",
            r"heckantrieb",
            r"hinterrad\w*",
        ),
    ),
)

# ---------------------------------------------------------------- facts asked about
_MPG = _rx(
    r"\bmpge?\b",
    r"fuel economy",
    r"fuel[- ]efficien\w*",
    r"gas mileage",
    r"\bmileage\b",
    r"miles per gallon",
    r"\bconsumption\b",
    r"\bconsumo\b",
    r"\bconsommation\b",
    r"verbrauch\w*",
    r"l/100",
    r"\brendimiento\b",
    r"economia de combustible",
    r"\befficient\b",
    r"\bsparsam\w*",
    r"\bgas\b",
    r"\bgasolina\b",
    r"\bessence\b",
    r"millas por galon",
)
_CITY = _rx(
    r"\bcity\b",
    r"\bciudad\b",
    r"\burban[oa]?\b",
    r"\ben ville\b",
    r"\burbain\w*",
    r"\bstadt\w*",
    r"innerorts",
)
_HIGHWAY = _rx(
    r"\bhighway\b",
    r"\bhwy\b",
    r"\bfreeway\b",
    r"\bmotorway\b",
    r"\bautopista\b",
    r"\bcarretera\b",
    r"\bautoroute\b",
    r"\bautobahn\b",
    r"ausserorts",
    r"landstrasse",
)

_FACT_PATTERNS: Final[tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]] = (
    (
        ("range_mi", "phev_electric_range_mi"),
        _rx(r"\branges?\b", r"\bautonomia\b", r"\bautonomie\b", r"\breichweite\b", r"how far"),
    ),
    (
        ("co2_gpm",),
        _rx(
            r"\bco2\b",
            r"emission\w*",
            r"emisiones",
            r"\bausstoss\b",
            r"greenhouse",
            r"\bcarbon\b",
            r"\bcarbono\b",
            r"\bcarbone\b",
            r"abgas\w*",
        ),
    ),
    (
        ("annual_fuel_cost_usd",),
        _rx(
            r"fuel costs?",
            r"gas costs?",
            r"cost to (?:run|fuel|drive|fill)",
            r"running costs?",
            r"annual cost",
            r"costs? (?:per|a) year",
            r"(?:coste|costo|gasto)s? (?:anual )?(?:de|en) (?:combustible|gasolina)",
            r"cout\w* (?:annuel )?(?:du |de |en )?carburant",
            r"budget carburant",
            r"(?:sprit|kraftstoff|treibstoff|benzin)kosten",
            r"cost of (?:fuel|gas)",
            r"(?:cuesta|cuestan|gasta|coute|coutent|kostet|kosten)\b(?:\W+\w+){0,4}?\W+"
            r"(?:combustible|gasolina|carburant|essence|sprit|benzin|kraftstoff|tanken)",
        ),
    ),
    (
        ("five_year_savings_usd",),
        _rx(r"\bsav(?:e|es|ings)\b", r"\bahorr\w*", r"\beconomis\w*", r"\bspar(?:en|t)\b"),
    ),
    (
        ("horsepower",),
        _rx(
            r"horse ?power",
            r"\bb?hp\b",
            r"\bpower\w*",
            r"\bpotencia\b",
            r"\bcaballos\b",
            r"\bcv\b",
            r"\bpuissan\w*",
            r"\bchevaux\b",
            r"\bleistung\b",
            r"\bps\b",
            r"\bkw\b",
        ),
    ),
    (
        ("passenger_volume_cuft",),
        _rx(
            r"passenger (?:volume|space|room)",
            r"interior (?:volume|space|room)",
            r"cabin (?:space|room)",
            r"\blegroom\b",
            r"\bheadroom\b",
            r"espacio (?:interior|para (?:los )?pasajeros)",
            r"volumen (?:interior|de pasajeros)",
            r"habitabilite",
            r"volume (?:interieur|passagers?|habitable)",
            r"espace interieur",
            r"innenraum\w*",
            r"platzangebot",
            r"passagiervolumen",
        ),
    ),
    (
        ("luggage_volume_cuft",),
        _rx(
            r"\btrunk\b",
            r"\bboot\b",
            r"\bcargo\b",
            r"\bluggage\b",
            r"\bmaletero\b",
            r"\bbaul\b",
            r"\bmaleta\w*",
            r"\bcoffre\b",
            r"\bbagages?\b",
            r"kofferraum\w*",
            r"\bgepack\w*",
            r"\bladeraum\b",
        ),
    ),
    (
        ("kwh_per_100mi",),
        _rx(
            r"\bkwh\b",
            r"electricity use",
            r"energy (?:use|consumption)",
            r"consumo (?:electrico|de energia)",
            r"consommation (?:electrique|d.energie)",
            r"stromverbrauch",
        ),
    ),
    (
        ("charge_hours_240v",),
        _rx(
            r"charg(?:e|ing) time",
            r"time to (?:re)?charge",
            r"how long\b.*\bcharge",
            r"\b240 ?v\b",
            r"tiempo de (?:re)?carga",
            r"temps de (?:re)?charge",
            r"ladezeit",
            r"ladedauer",
        ),
    ),
    (("fe_score",), _rx(r"(?:fuel economy|fe|epa) (?:score|rating)")),
    (("ghg_score",), _rx(r"(?:greenhouse gas|ghg|smog) (?:score|rating)")),
    (
        ("test_weight_lbs",),
        _rx(
            r"test weight",
            r"peso (?:de|en) (?:prueba|ensayo)",
            r"poids d.essai",
            r"testgewicht",
            r"inertia weight",
        ),
    ),
    (
        ("axle_ratio",),
        _rx(r"axle ratio", r"final drive", r"relacion (?:del|de) eje", r"rapport de pont", r"achsuber\w*"),
    ),
    (
        ("gears",),
        _rx(
            r"\bgears\b",
            r"how many speeds",
            r"\bmarchas\b",
            r"\bvelocidades\b",
            r"\brapports\b",
            r"\bgange\b",
            r"\bgang\b",
        ),
    ),
    (
        ("engine", "ev_motor"),
        _rx(
            r"\bengines?\b",
            r"\bmotor\w*",
            r"\bmoteurs?\b",
            r"displacement",
            r"\bcylinders?\b",
            r"\bcilindr\w*",
            r"\bcylindree\b",
            r"\bhubraum\b",
            r"\bzylinder\w*",
            r"\bv6\b",
            r"\bv8\b",
        ),
    ),
    (
        ("transmission",),
        _rx(
            r"transmission",
            r"gearbox",
            r"\bautomatic\b",
            r"\bmanual\b",
            r"\bcvt\b",
            r"caja de cambios",
            r"transmision",
            r"boite (?:de vitesses|auto|manuelle)",
            r"getriebe",
            r"schaltung",
            r"automatik",
        ),
    ),
    (
        ("drive",),
        _rx(
            r"drivetrain",
            r"drive ?type",
            r"which wheels",
            r"tipo de traccion",
            r"transmission aux",
            r"antriebsart",
        ),
    ),
    (
        ("fuel",),
        _rx(
            r"fuel type",
            r"type of fuel",
            r"what fuel",
            r"tipo de combustible",
            r"type de carburant",
            r"kraftstoffart",
        ),
    ),
    (
        ("vehicle_class",),
        _rx(r"size class", r"what (?:class|kind of vehicle)", r"categoria", r"categorie", r"fahrzeugklasse"),
    ),
)

# ---------------------------------------------------------------- fields no dataset holds
_UNAVAILABLE_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "towing_capacity",
        _rx(
            r"\btow\w*",
            r"remolc\w*",
            r"\bremolque\w*",
            r"\barrastre\b",
            r"remorqu\w*",
            r"\btracter\b",
            r"\btractage\b",
            r"anhange\w*",
            r"\bzuglast\b",
            r"\bziehen\b",
            r"abschlepp\w*",
        ),
    ),
    (
        "payload",
        _rx(r"payload", r"carga util", r"capacidad de carga", r"charge utile", r"nutzlast", r"zuladung"),
    ),
    (
        "curb_weight",
        _rx(
            r"(?:curb|kerb|empty|dry) weight",
            r"\bweigh(?:s|t)?\b",
            r"how heavy",
            r"\bpeso\b",
            r"\bpesa\b",
            r"\bpoids\b",
            r"\bpese\b",
            r"\bgewicht\b",
            r"leergewicht",
            r"\bwiegt\b",
            r"wie schwer",
        ),
    ),
    (
        "dimensions",
        _rx(
            r"dimension\w*",
            r"\blength\b",
            r"\bwidth\b",
            r"\bheight\b",
            r"wheelbase",
            r"how (?:long|wide|tall|big)\b",
            r"ground clearance",
            r"\blargo\b",
            r"\blongitud\b",
            r"\bancho\b",
            r"\baltura\b",
            r"distancia entre ejes",
            r"\bmedidas\b",
            r"\blongueur\b",
            r"\blargeur\b",
            r"\bhauteur\b",
            r"empattement",
            r"abmessung\w*",
            r"\blange\b",
            r"\bbreite\b",
            r"\bhohe\b",
            r"radstand",
            r"bodenfreiheit",
        ),
    ),
    (
        "seating",
        _rx(
            r"\bseats?\b(?!\s*belt)",
            r"\bseating\b",
            r"how many (?:people|passengers|persons|adults)",
            r"\basientos\b",
            r"\bplazas\b",
            r"cuantas personas",
            r"cuantos pasajeros",
            r"\bplaces\b",
            r"\bsieges\b",
            r"combien de (?:personnes|passagers)",
            r"sitzplatz\w*",
            r"\bsitze\b",
            r"wie viele (?:personen|leute|passagiere)",
        ),
    ),
    ("torque", _rx(r"\btorque\b", r"\blb[- ]?ft\b", r"\bnm\b", r"par motor", r"\bcouple\b", r"drehmoment")),
    (
        "msrp",
        _rx(
            r"\bmsrp\b",
            r"\bprices?\b",
            r"\bpriced\b",
            r"sticker price",
            r"\bprecios?\b",
            r"\bprix\b",
            r"\bpreis\w*",
            r"listenpreis",
        ),
    ),
    (
        "crash_rating",
        _rx(
            r"\bcrash\w*",
            r"safety (?:rating|score)s?",
            r"\bncap\b",
            r"\biihs\b",
            r"star rating",
            r"how safe",
            r"\bseguridad\b",
            r"\bchoque\b",
            r"\bsecurite\b",
            r"\bsicher\w*",
            r"\bsterne\b",
            r"\betoiles\b",
            r"\bestrellas\b",
        ),
    ),
)
# "How much does it cost" is a price question unless it is about fuel.
_PRICE_WEAK = _rx(
    r"how much (?:does|do|is|are|would)\b",
    r"\bcosts?\b",
    r"cuanto (?:cuesta|vale)",
    r"\bcuesta\b",
    r"combien (?:coute|vaut)",
    r"\bcoute\b",
    r"was kostet",
    r"\bkostet\b",
)
_RECALLS = _rx(
    r"recall\w*",
    r"llamad[oa]s? a revision",
    r"\bretiros?\b",
    r"revisiones",
    r"revision(?:es)? de seguridad",
    r"campanas? de (?:seguridad|servicio)",
    r"\brappels?\b",
    r"campagnes? de rappel",
    r"ruckruf\w*",
    r"\bdefect\w*",
    r"\bdefectos?\b",
    r"\bdefauts?\b",
)
_COMPARE = _rx(
    r"\bvs\b",
    r"\bversus\b",
    r"\bcompar\w*",
    r"\bvergleich\w*",
    r"\bdifferen\w*",
    r"\bunterschied\w*",
    r"\bbetter\b",
    r"\bmejor\b",
    r"\bmeilleur\w*",
    r"\bbesser\w*",
    r"\bgegen\b",
    r"\boder\b",
)

# Common words in the four languages: a model or make spelled like one counts only
# next to its make (`Honda Fit`, `Lexus IS`), never alone.
_COMMON: Final[frozenset[str]] = words(
    """
    a an and are as at be best but by can car cars compare de del der des die das do does
    du el en es et for from has have how i in is it its la las le les los me mi mon my
    of on or our que qui se so than that the their this to un una und une vs was we what
    which who why will with you your ist ein eine mit von wie wo im am auf aus est sur par
    pour avec dans au aux ce cette o y u e mas plus mehr more most less one two ma mein
    meine mes ses sus su son sa air life fit sport base limited touring value van wagon
    coupe convertible hybrid electric truck pickup range power city gt ss ltd tc m cx xm
    exp sc rs cl
    """
)
_STOP: Final[frozenset[str]] = _COMMON | words(
    """
    what whats about tell give show list find much many does model year years vehicle vehicles
    auto autos coche coches voiture voitures wagen fahrzeug fahrzeuge cual cuales cuanto cuanta
    quel quelle quels quelles combien welche welcher welches wieviel viel hat haben sind sein
    tiene tienen avoir sont cest son please por para sobre entre against versus
    """
)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One base model of one make that the data holds, with the model years it covers."""

    make_key: str
    model_key: str
    name: str  # display spelling of the base model: "RAV4", "CR-V"
    years: tuple[int, ...] = ()  # model years with spec documents, ascending


@dataclass(frozen=True)
class Vocabulary:
    """The makes and models the data holds: what a question is matched against."""

    makes: Mapping[str, str]  # make_key -> display name
    models: Mapping[str, Mapping[str, ModelEntry]]  # make_key -> model_key -> entry
    years: tuple[int, int] | None = None  # (first, last) model year with spec documents
    _by_model_key: dict[str, list[ModelEntry]] = field(default_factory=dict, init=False, repr=False)
    _aliases: dict[str, dict[str, ModelEntry]] = field(default_factory=dict, init=False, repr=False)
    _glued: dict[str, ModelEntry] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[str, list[ModelEntry]] = {}
        aliases: dict[str, dict[str, ModelEntry]] = {}
        for make, by_model in self.models.items():
            own: dict[str, ModelEntry] = {}
            for entry in by_model.values():
                for alias in _aliases(entry):
                    held = own.get(alias)
                    # "Bolt" -> "Bolt EV" rather than "Bolt EUV": the shortest name is the plain model
                    if alias not in by_model and (held is None or len(entry.model_key) < len(held.model_key)):
                        own[alias] = entry
            own.update(by_model)
            aliases[make] = own
            for alias, entry in own.items():
                index.setdefault(alias, []).append(entry)
        object.__setattr__(self, "_by_model_key", index)
        object.__setattr__(self, "_aliases", aliases)
        object.__setattr__(
            self,
            "_glued",
            {_NOT_ALNUM.sub("", m) + k: e for m, own in aliases.items() for k, e in own.items()},
        )

    @classmethod
    def build(cls, rows: Iterable[tuple[str, str, str, str, int | None]]) -> Vocabulary:
        """Build from `(make_key, make, model_key, base_model, year)` rows.

        The first display spelling seen for a key wins, so pass the preferred source
        (EPA) first.
        """
        makes: dict[str, str] = {}
        names: dict[tuple[str, str], str] = {}
        years: dict[tuple[str, str], set[int]] = {}
        for make_key, make, model_key, base_model, year in rows:
            if not make_key or not model_key:
                continue
            makes.setdefault(make_key, make)
            names.setdefault((make_key, model_key), base_model)
            bucket = years.setdefault((make_key, model_key), set())
            if year is not None:
                bucket.add(year)
        models: dict[str, dict[str, ModelEntry]] = {}
        for (mk, mdk), name in names.items():
            models.setdefault(mk, {})[mdk] = ModelEntry(mk, mdk, name, tuple(sorted(years[(mk, mdk)])))
        all_years = [y for ys in years.values() for y in ys]
        span = (min(all_years), max(all_years)) if all_years else None
        return cls(makes=makes, models=models, years=span)

    def entries_for(self, model_key: str) -> list[ModelEntry]:
        """Return every make's model with this key (or a short name of it: `bolt` -> Bolt EV)."""
        return self._by_model_key.get(model_key, [])

    def model_for(self, make_key: str, model_key: str) -> ModelEntry | None:
        """Return the make's model with this key or short name, or None."""
        return self._aliases.get(make_key, {}).get(model_key)

    def glued(self, token: str) -> ModelEntry | None:
        """Return the model a make and model written as one word name (`mazda3`), or None."""
        return self._glued.get(token)

    def resolve_make(self, raw: str) -> str | None:
        """Return the make key for a make as written (aliases folded), or None."""
        key = normalise_make(raw)
        if key in self.makes:
            return key
        squashed = _NOT_ALNUM.sub("", key)
        for candidate in self.makes:
            if _NOT_ALNUM.sub("", candidate) == squashed:
                return candidate
        return None

    def resolve_model(self, make_key: str, raw: str) -> tuple[ModelEntry | None, str]:
        """Return the model entry for a model as written, and the words left over.

        `RAV4 Hybrid AWD` -> (RAV4, "Hybrid AWD"): the leftover words narrow the
        configuration. The longest leading run of words that names a model wins.
        """
        words = raw.split()
        for n in range(len(words), 0, -1):
            head = " ".join(words[:n])
            for key in (normalise_model(head), _fold(head)):
                entry = self.model_for(make_key, key) if key else None
                if entry is None:
                    continue
                rest = " ".join(words[n:])
                if key != _fold(head):
                    # names.model_key dropped drive/powertrain words: keep them as configuration
                    dropped = " ".join(w for w in words[:n] if _fold(w) not in _model_words(entry))
                    rest = " ".join(x for x in (dropped, rest) if x)
                return entry, rest
        return None, raw


def _aliases(entry: ModelEntry) -> set[str]:
    names = {entry.name, *re.split(r"[/,]", entry.name)}
    out = {_fold(n) for n in names}
    first = entry.name.split()[0] if entry.name.split() else ""
    if len(first) >= 3:
        out.add(_fold(first.split("/")[0]))
    return {a for a in out if a and a != entry.model_key}


def _model_words(entry: ModelEntry) -> set[str]:
    return {_fold(w) for w in entry.name.split()}


@dataclass(frozen=True, slots=True)
class VehicleMention:
    """One vehicle a question names, as far as the question says."""

    make_key: str | None
    model_key: str | None
    year: int | None = None
    make: str | None = None  # display
    model: str | None = None  # display base model
    configuration: str | None = None  # words that narrow it: "hybrid AWD 2.5L"
    start: int = 0  # token position in the question


@dataclass(frozen=True, slots=True)
class SpecQuery:
    """What a question asks, as structured filters and fact keys."""

    text: str  # the question as read (clipped to MAX_QUESTION_CHARS)
    clipped: bool = False
    vehicles: tuple[VehicleMention, ...] = ()
    year: int | None = None
    make_key: str | None = None
    model_key: str | None = None
    fuel: FuelKind | None = None
    vehicle_class: ClassKind | None = None
    drive: DriveKind | None = None
    displacement_l: float | None = None
    facts: tuple[str, ...] = ()  # FACTS keys and DESCRIPTIVE keys, in the order asked
    unavailable: tuple[str, ...] = ()  # UNAVAILABLE keys
    recalls: bool = False
    comparison: bool = False
    terms: tuple[str, ...] = ()  # content words for full-text search

    @property
    def has_vehicle(self) -> bool:
        """True when the question names at least a make or a model."""
        return bool(self.vehicles)

    def canonical_text(self) -> str:
        """Return an English rendering of the parsed question for the embedding model.

        The local embedding model is English-only; a Spanish question about the same
        vehicle and fact should land near the same documents.
        """
        parts: list[str] = []
        for v in self.vehicles:
            parts.extend(str(p) for p in (v.year, v.make, v.model, v.configuration) if p)
        if not self.vehicles and self.year:
            parts.append(str(self.year))
        if self.fuel:
            parts.append(self.fuel)
        if self.vehicle_class:
            parts.append(_CLASS_WORDS[self.vehicle_class])
        if self.drive:
            parts.append(self.drive.upper())
        for key in self.facts:
            fact = FACTS_BY_KEY.get(key)
            parts.append(fact.label if fact else DESCRIPTIVE.get(key, key))
        if self.recalls:
            parts.append("recall")
        return " ".join(dict.fromkeys(parts))


_CLASS_WORDS: Final[dict[str, str]] = {
    "suv": "sport utility vehicle",
    "pickup": "pickup truck",
    "car": "car",
    "minivan": "minivan",
    "van": "van",
    "wagon": "station wagon",
    "two-seater": "two seater",
}


def fold(text: str) -> str:
    """Return `text` lower-cased with accents stripped and `ß` as `ss` (what the patterns read)."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss").replace("ẞ", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _fold(word: str) -> str:
    return _NOT_ALNUM.sub("", fold(word))


def parse_question(text: str, vocabulary: Vocabulary) -> SpecQuery:
    """Parse a free-text question into vehicles, filters and the facts it asks about.

    Args:
        text: The question as the user wrote it, in English, Spanish, French or German.
        vocabulary: The makes and models the data holds.

    Returns:
        The structured reading. The top-level `year`/`make_key`/`model_key` are those
        of the first vehicle named (or the only year written).
    """
    clipped = len(text) > MAX_QUESTION_CHARS
    raw = text[:MAX_QUESTION_CHARS]
    folded = fold(raw)
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(folded)]

    years = [(int(m.group(1)), m.start()) for m in _YEAR.finditer(folded)]
    vehicles = _find_vehicles(tokens, folded, years, vocabulary)

    fuel = _first(_FUELS, folded)
    vehicle_class = _first(_CLASSES, folded)
    drive = _first(_DRIVES, folded)
    displacement = next((float(m.group(1)) for m in _DISPLACEMENT.finditer(folded)), None)
    if displacement is not None and not 0.5 <= displacement <= 9.0:
        displacement = None

    facts = _facts(folded)
    unavailable = _unavailable(folded, facts)
    recalls = bool(_RECALLS.search(folded))
    comparison = len(vehicles) >= 2 or (bool(_COMPARE.search(folded)) and len(vehicles) >= 2)

    first = vehicles[0] if vehicles else None
    year = first.year if first and first.year else (years[0][0] if years else None)
    used = {w for v in vehicles for w in (v.make_key, v.model_key) if w}
    terms = _terms(tokens, used, facts)
    return SpecQuery(
        text=raw,
        clipped=clipped,
        vehicles=tuple(vehicles),
        year=year,
        make_key=first.make_key if first else None,
        model_key=first.model_key if first else None,
        fuel=fuel,
        vehicle_class=vehicle_class,
        drive=drive,
        displacement_l=displacement,
        facts=facts,
        unavailable=unavailable,
        recalls=recalls,
        comparison=comparison,
        terms=terms,
    )


def split_vehicles(text: str, vocabulary: Vocabulary) -> list[VehicleMention]:
    """Return the vehicles of "X vs Y", "compare X and Y", "X oder Y" and the like, in order."""
    return list(parse_question(text, vocabulary).vehicles)


def configuration_words(text: str) -> str | None:
    """Return the configuration words in `text` (fuel, drive, displacement), normalised, or None."""
    folded = fold(text)
    parts: list[str] = []
    if (fuel := _first(_FUELS, folded)) is not None:
        parts.append(fuel)
    if (drive := _first(_DRIVES, folded)) is not None:
        parts.append(drive.upper())
    if (m := _DISPLACEMENT.search(folded)) is not None:
        parts.append(f"{m.group(1)}L")
    if re.search(r"\bmanual\b|\bmanuel\w*|\bschalt\w*", folded):
        parts.append("manual")
    return " ".join(parts) or None


def _first(table: Iterable[tuple[K, re.Pattern[str]]], folded: str) -> K | None:
    for kind, pattern in table:
        if pattern.search(folded):
            return kind
    return None


def _facts(folded: str) -> tuple[str, ...]:
    found: list[str] = []
    mpg = bool(_MPG.search(folded))
    city = bool(_CITY.search(folded))
    highway = bool(_HIGHWAY.search(folded))
    if city and (mpg or not highway):
        found.append("city_mpg")
    if highway and (mpg or not city):
        found.append("highway_mpg")
    if mpg and not (city or highway):
        found.append("combined_mpg")
    if city and highway and not mpg:
        found.extend(k for k in ("city_mpg", "highway_mpg") if k not in found)
    for keys, pattern in _FACT_PATTERNS:
        if pattern.search(folded):
            found.extend(k for k in keys if k not in found)
    if "combined_mpg" in found and "annual_fuel_cost_usd" in found and not re.search(r"\bmpge?\b", folded):
        # "gas cost" matched the bare `gas` trigger too
        found.remove("combined_mpg")
    return tuple(found)


def _unavailable(folded: str, facts: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for key, pattern in _UNAVAILABLE_PATTERNS:
        if not pattern.search(folded):
            continue
        if key == "curb_weight" and "test_weight_lbs" in facts and not re.search(r"curb|kerb|leer", folded):
            continue
        found.append(key)
    if not found and "annual_fuel_cost_usd" not in facts and _PRICE_WEAK.search(folded):
        about_fuel = re.search(r"\b(?:fuel|gas|carburant|combustible|gasolina|sprit|benzin)\b", folded)
        if not about_fuel and not facts:
            found.append("msrp")
    return tuple(k for k in found if k in UNAVAILABLE)


def _terms(tokens: list[tuple[str, int, int]], used: set[str], facts: tuple[str, ...]) -> tuple[str, ...]:
    words: list[str] = []
    for token, _, _ in tokens:
        for word in re.split(r"[-/]", token) + ([_NOT_ALNUM.sub("", token)] if "-" in token else []):
            if len(word) < 2 or word in _STOP:
                continue
            words.append(word)
    for key in facts:
        if key in ("phev_electric_range_mi", "ev_motor"):
            continue
        fact = FACTS_BY_KEY.get(key)
        label = fact.label if fact else DESCRIPTIVE.get(key, "")
        words.extend(w for w in _NOT_ALNUM.split(label.lower()) if len(w) > 2 and w not in _STOP)
    words.extend(sorted(used))
    return tuple(dict.fromkeys(words))[:MAX_TERMS]


def _find_vehicles(
    tokens: list[tuple[str, int, int]],
    folded: str,
    years: list[tuple[int, int]],
    vocabulary: Vocabulary,
) -> list[VehicleMention]:
    words = [t for t, _, _ in tokens]
    squashed = [_NOT_ALNUM.sub("", w) for w in words]
    spans: list[tuple[int, int, str | None, ModelEntry | None]] = []  # start, end, make_key, model
    i = 0
    while i < len(words):
        make, make_len = _make_at(words, i, vocabulary)
        if make is not None:
            model, model_len = _model_at(squashed, i + make_len, vocabulary, make)
            if model is None and make_len > 1:
                # "Tesla Model 3": the make alias swallowed the model's words
                model, model_len = _model_at(squashed, i + 1, vocabulary, make)
                make_len = 1 if model is not None else make_len
            if model is not None or not _ambiguous_make(words[i]):
                spans.append((i, i + make_len + model_len, make, model))
                i += make_len + model_len
                continue
        glued = vocabulary.glued(squashed[i])
        if glued is not None:
            spans.append((i, i + 1, glued.make_key, glued))
            i += 1
            continue
        model, model_len = _model_at(squashed, i, vocabulary, None)
        if model is not None:
            spans.append((i, i + model_len, None, model))
            i += model_len
            continue
        i += 1

    named_makes = [m for _, _, m, _ in spans if m]
    mentions: list[VehicleMention] = []
    for index, (start, end, make, model) in enumerate(spans):
        if model is not None and make is None:
            # a model named on its own: the make named elsewhere in the question, else the data's
            entries = vocabulary.entries_for(model.model_key)
            model = next((e for e in entries if e.make_key in named_makes), model)
            make = model.make_key
        nxt = spans[index + 1][0] if index + 1 < len(spans) else len(tokens)
        prev_end = spans[index - 1][1] if index > 0 else 0
        seg_start = tokens[prev_end][1] if prev_end < len(tokens) else len(folded)
        seg_end = tokens[nxt - 1][2] if 0 < nxt <= len(tokens) else len(folded)
        tail_stop = min(nxt, end + 5)
        tail = folded[tokens[end - 1][2] : tokens[tail_stop - 1][2]] if tail_stop > end else ""
        mentions.append(
            VehicleMention(
                make_key=make,
                model_key=model.model_key if model else None,
                year=_year_near(years, seg_start, seg_end, tokens[start][1]),
                make=vocabulary.makes.get(make) if make else None,
                model=model.name if model else None,
                configuration=configuration_words(tail),
                start=start,
            )
        )
    mentions = _attach_years(mentions, spans, tokens, years)
    if len(years) == 1:
        mentions = [m if m.year else _with_year(m, years[0][0]) for m in mentions]
    # a bare make that another mention names with a model adds nothing ("Toyota: is the Toyota RAV4 ...")
    with_models = {m.make_key for m in mentions if m.model_key}
    mentions = [m for m in mentions if m.model_key or m.make_key not in with_models]
    # the same vehicle named twice is one vehicle
    unique: dict[tuple[str | None, str | None, int | None, str | None], VehicleMention] = {}
    for m in mentions:
        unique.setdefault((m.make_key, m.model_key, m.year, m.configuration), m)
    return list(unique.values())


def _attach_years(
    mentions: list[VehicleMention],
    spans: list[tuple[int, int, str | None, ModelEntry | None]],
    tokens: list[tuple[str, int, int]],
    years: list[tuple[int, int]],
) -> list[VehicleMention]:
    """Give each vehicle the year written right before it or right after it.

    English puts the year first ("2024 Tesla Model 3"), Spanish, French and German
    often last ("Tesla Model 3 2024"). When every vehicle has a year on the same side,
    that side wins; otherwise each takes the adjacent year its neighbour does not.
    """
    if len(years) < 2 or len(mentions) != len(spans):
        return mentions
    at = {start: year for year, start in years}
    token_year = {i: at[t[1]] for i, t in enumerate(tokens) if t[1] in at}
    before = [token_year.get(start - 1) for start, _, _, _ in spans]
    after = [token_year.get(end) for _, end, _, _ in spans]
    if all(y is not None for y in before):
        chosen = before
    elif all(y is not None for y in after):
        chosen = after
    else:
        chosen = []
        for i in range(len(spans)):
            shared = i + 1 < len(spans) and spans[i][1] == spans[i + 1][0] - 1
            chosen.append(before[i] if before[i] is not None or shared else after[i])
    return [_with_year(m, y) if y is not None else m for m, y in zip(mentions, chosen, strict=True)]


def _with_year(m: VehicleMention, year: int) -> VehicleMention:
    return VehicleMention(m.make_key, m.model_key, year, m.make, m.model, m.configuration, m.start)


def _year_near(years: list[tuple[int, int]], seg_start: int, seg_end: int, anchor: int) -> int | None:
    inside = [(abs(pos - anchor), y) for y, pos in years if seg_start <= pos <= seg_end]
    return min(inside)[1] if inside else None


def _ambiguous_make(word: str) -> bool:
    return word in _COMMON or word in {"smart", "mini", "genesis", "eagle", "lucid", "scout", "fisker"}


def _make_at(words: list[str], i: int, vocabulary: Vocabulary) -> tuple[str | None, int]:
    for n in (3, 2, 1):
        if i + n > len(words):
            continue
        phrase = " ".join(words[i : i + n])
        key = normalise_make(phrase)
        if key in vocabulary.makes:
            return key, n
    return None, 0


def _model_at(
    squashed: list[str], i: int, vocabulary: Vocabulary, make: str | None
) -> tuple[ModelEntry | None, int]:
    for n in (3, 2, 1):
        if i + n > len(squashed):
            continue
        key = "".join(squashed[i : i + n])
        if not key:
            continue
        if make is not None:
            entry = vocabulary.model_for(make, key)
            if entry is not None:
                return entry, n
            continue
        if squashed[i] in _STOP or squashed[i].isdigit() or len(key) < 2:
            continue
        entries = vocabulary.entries_for(key)
        if entries:
            return entries[0], n
    return None, 0
