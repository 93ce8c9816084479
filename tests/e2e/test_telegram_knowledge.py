"""The Telegram bot over the vehicle knowledge: charts, recalls, follow-up buttons, bulk jobs, /plan.

The real bot (`bot.app.run_polling`, the body of `vinbot bot`) long-polls the Telegram
stand-in (tests/standins/telegram_api.py) over HTTP, with the offline planner, on the
session's database with the shared EPA and NHTSA files ingested (`knowledge_url`,
tests/conftest.py). Expected recall campaigns are read from the shared files; the
expected figures are the files' own (EPA vehicles.csv, the EPA test-car list).

tests/e2e/test_telegram_bot.py covers the rest of the bot (start, decode, languages,
photos, a CSV file as a bulk job, limits, errors) on a database without the knowledge.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_harness import make_settings, polling
from PIL import Image
from standins.telegram_api import BotState, TelegramStandIn, button_data, user

pytestmark = pytest.mark.e2e

TOKEN = "4646464646:AAH-standin-token-knowledge-tests-0123456"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FOCUS = "1FADP3F21EL321063"  # a 2014 Ford Focus SE (vPIC)
TAURUS = "1FAHP2J82EG109854"  # a 2014 Ford Taurus Limited
EXPLORER = "1FM5K7D88DGA93688"  # a 2013 Ford Explorer
_user_ids = itertools.count(int(time.time() * 1000) % 10_000_000 * 100 + 50)


def new_user(language: str) -> dict[str, Any]:
    return user(next(_user_ids), language)


def recall_campaigns(shared_data: Path, make: str, model: str, year: int) -> set[str]:
    """The NHTSA campaigns of one vehicle in the shared per-vehicle recall file."""
    with gzip.open(shared_data / "nhtsa_recalls_by_vehicle_2020_2026.csv.gz", "rt", encoding="utf-8") as f:
        return {
            row["nhtsa_campaign"]
            for row in csv.DictReader(f)
            if (row["make"], row["model"], row["model_year"]) == (make, model, str(year))
        }


@pytest.fixture(scope="module")
async def bot(
    telegram: tuple[TelegramStandIn, str],
    knowledge_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotState]:
    """The bot on the knowledge database, polling the stand-in for the whole module."""
    standin, url = telegram
    state = standin.bot(TOKEN)
    data_dir = tmp_path_factory.mktemp("bot-knowledge")
    settings = make_settings(knowledge_url, redis_url, data_dir, url, TOKEN, chunk_size=2)
    async with polling(settings, state):
        yield state


@dataclass
class Chat:
    """One person's private chat with the bot."""

    state: BotState
    person: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.person["id"])

    def sent(self) -> list[dict[str, Any]]:
        return self.state.sent_messages(self.id)

    async def replies(self, seen: int, *, until_buttons: str | None = "fb:") -> list[dict[str, Any]]:
        """The bot's messages after the first `seen`, once one carries a button starting `until_buttons`
        (an answer of the assistant ends with its rating buttons), or once any came (None)."""

        def done() -> list[dict[str, Any]] | None:
            new = self.sent()[seen:]
            if until_buttons is None:
                return new or None
            for i, message in enumerate(new):
                if any(d.startswith(until_buttons) for d in button_data(message)):
                    return new[: i + 1]
            return None

        try:
            found: list[dict[str, Any]] = await self.state.wait_for(done, within_s=60)
        except TimeoutError:
            pytest.fail(f"no answer came; the bot sent: {[m.get('text') for m in self.sent()[seen:]]}")
        return found

    async def command(self, name: str, *args: str, until_buttons: str | None = "fb:") -> list[dict[str, Any]]:
        seen = len(self.sent())
        self.state.push_command(self.person, name, *args)
        return await self.replies(seen, until_buttons=until_buttons)

    async def say(
        self, text: str, *, reply_to: dict[str, Any] | None = None, until_buttons: str | None = "fb:"
    ) -> list[dict[str, Any]]:
        seen = len(self.sent())
        self.state.push_text(self.person, text, reply_to=reply_to)
        return await self.replies(seen, until_buttons=until_buttons)

    async def press(
        self, message: dict[str, Any], data: str, *, until_buttons: str | None = "fb:"
    ) -> list[dict[str, Any]]:
        assert data in button_data(message), (data, button_data(message))
        seen = len(self.sent())
        self.state.push_callback(self.person, message, data)
        return await self.replies(seen, until_buttons=until_buttons)


def chart_of(state: BotState, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], Image.Image]:
    """The one photo among `messages`, sent as a multipart upload, and its decoded image."""
    photos = [m for m in messages if "photo" in m]
    assert len(photos) == 1, [m.get("text") for m in messages]
    photo = photos[0]
    upload = state.uploads[photo["message_id"]]
    assert upload.startswith(PNG_SIGNATURE)
    call = next(c for c in state.calls_of("sendPhoto") if c.params.get("photo") == upload)
    assert "_filename:photo" in call.params, "the chart is uploaded as a file (multipart), not by URL or id"
    image = Image.open(io.BytesIO(upload))
    image.load()
    return photo, image


# ---------------------------------------------------------------- the stand-in's uploads


async def test_the_stand_in_takes_multipart_photo_uploads_and_serves_them_back_like_telegram(
    telegram: tuple[TelegramStandIn, str],
) -> None:
    standin, url = telegram
    token = "4747474747:AAH-standin-token-upload-tests-0123456789"
    image = io.BytesIO()
    Image.new("RGB", (320, 200), (200, 30, 30)).save(image, "PNG")
    async with httpx.AsyncClient(base_url=f"{url}/bot{token}") as client:
        refused = await client.post(
            "/sendPhoto", data={"chat_id": "7"}, files={"photo": ("chart.png", b"not an image", "image/png")}
        )
        sent = await client.post(
            "/sendPhoto",
            data={"chat_id": "7", "caption": "<i>chart</i>", "parse_mode": "HTML"},
            files={"photo": ("chart.png", image.getvalue(), "image/png")},
        )
        photo = sent.json()["result"]["photo"][-1]
        file = (await client.post("/getFile", data={"file_id": photo["file_id"]})).json()["result"]
        downloaded = await client.get(f"{url}/file/bot{token}/{file['file_path']}")

    assert refused.status_code == 400
    assert refused.json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
    assert sent.json()["result"]["caption"] == "chart"
    assert (photo["width"], photo["height"]) == (320, 200)
    assert downloaded.content == image.getvalue()
    assert standin.bot(token).calls_of("sendPhoto")[-1].params["_filename:photo"] == "chart.png"


# ---------------------------------------------------------------- /compare: the chart as a photo

COMPARE_EXPECTED = {
    # (header, the figures of the EPA files: combined MPG and rated horsepower, the sources label)
    "en": (
        "Comparison of the 2019 Toyota RAV4 (RAV4) and 2019 Honda CR-V (CR-V FWD):",
        ["combined: RAV4 30 mpg; CR-V FWD 30 mpg", "horsepower: RAV4 203 hp; CR-V FWD 190 hp"],
        "Sources:",
    ),
    "de": (
        "Vergleich von 2019 Toyota RAV4 (RAV4) und 2019 Honda CR-V (CR-V FWD):",
        ["kombiniert: RAV4 30 mpg; CR-V FWD 30 mpg", "Leistung: RAV4 203 hp; CR-V FWD 190 hp"],
        "Quellen:",
    ),
}


@pytest.mark.parametrize("language", ["en", "de"])
async def test_compare_command_sends_the_chart_as_a_png_photo_with_its_sources_then_the_figures(
    bot: BotState, language: str
) -> None:
    chat = Chat(bot, new_user(language))
    header, figures, sources = COMPARE_EXPECTED[language]

    replies = await chat.command("compare", "2019", "Toyota", "RAV4", "vs", "2019", "Honda", "CR-V")

    photo, image = chart_of(bot, replies)
    assert image.format == "PNG"
    assert image.width >= 400
    assert image.height >= 200
    caption = photo["caption"]
    assert caption.startswith("2019 Toyota RAV4 vs 2019 Honda CR-V\n\n")
    assert f"{sources} EPA/DOE fuel economy" in caption
    assert "<i>" in photo["html"], "the caption's sources line is HTML, parsed as Telegram does"
    answer = replies[-1]
    assert answer["message_id"] > photo["message_id"], "the chart comes first, the figures under it"
    assert answer["text"].startswith(header)
    for figure in figures:
        assert figure in answer["text"]
    assert f"{sources} EPA/DOE fuel economy" in answer["text"]


async def test_compare_command_compares_the_vehicles_of_two_vins(bot: BotState) -> None:
    chat = Chat(bot, new_user("en"))

    replies = await chat.command("compare", FOCUS, "vs", TAURUS)

    photo, _image = chart_of(bot, replies)
    assert photo["caption"].startswith("2014 Ford Focus vs 2014 Ford Taurus")
    text = replies[-1]["text"]
    assert text.startswith("Comparison of the 2014 Ford Focus (Focus FWD) and 2014 Ford Taurus (Taurus FWD):")
    assert "combined: Focus FWD 30 mpg; Taurus FWD 26 mpg" in text  # EPA: 2.0L automatic vs 2.0L turbo


# ---------------------------------------------------------------- /recalls

RECALLS_EXPECTED = {
    "en": ("NHTSA lists {n} recall campaign", "for the 2014 Ford Focus", "for the 2014 Ford Taurus"),
    "fr": (
        "La NHTSA recense {n} campagne",
        "pour le véhicule 2014 Ford Focus",
        "pour le véhicule 2014 Ford Taurus",
    ),
}


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_recalls_lists_the_campaigns_of_the_last_decoded_vehicle_or_of_the_one_named(
    bot: BotState, shared_data: Path, language: str
) -> None:
    chat = Chat(bot, new_user(language))
    count, focus_name, taurus_name = RECALLS_EXPECTED[language]
    focus = recall_campaigns(shared_data, "FORD", "FOCUS", 2014)
    taurus = recall_campaigns(shared_data, "FORD", "TAURUS", 2014)
    assert focus
    assert len(taurus) >= 2
    assert not focus & taurus

    await chat.command("vin", FOCUS)
    last = (await chat.command("recalls"))[-1]["text"]
    assert last.startswith(count.format(n=len(focus)))
    assert focus_name in last
    assert all(f"- {campaign}" in last for campaign in focus)

    named = (await chat.command("recalls", "2014", "Ford", "Taurus"))[-1]["text"]
    assert named.startswith(count.format(n=len(taurus)))
    assert taurus_name in named
    assert all(f"- {campaign}" in named for campaign in taurus)
    assert not any(campaign in named for campaign in focus)
    assert "NHTSA recalls (campaigns filed 2020 and later)" in named


# ---------------------------------------------------------------- the buttons after a decode

BUTTONS_EXPECTED = {
    # (the specs' per-configuration line, a recall line's lead, the comparison's header and a row)
    "en": (
        "combined 30 mpg, annual fuel cost $1,500",
        "recall campaign for the 2014 Ford Focus",
        "Comparison of the 2014 Ford Focus (Focus FWD) and 2014 Honda Civic (Civic):",
        "combined: Focus FWD 30 mpg; Civic 33 mpg",
    ),
    "es": (
        "combinado 30 mpg, coste anual de combustible 1.500 USD",
        "llamada a revisión para el 2014 Ford Focus",
        "Comparación de 2014 Ford Focus (Focus FWD) y 2014 Honda Civic (Civic):",
        "combinado: Focus FWD 30 mpg; Civic 33 mpg",
    ),
}


@pytest.mark.parametrize("language", ["en", "es"])
async def test_specs_recalls_and_compare_buttons_answer_from_the_knowledge_after_a_decode(
    bot: BotState, shared_data: Path, language: str
) -> None:
    chat = Chat(bot, new_user(language))
    specs, recalls_lead, compare_header, compare_row = BUTTONS_EXPECTED[language]
    decoded = (await chat.command("vin", FOCUS))[-1]
    assert button_data(decoded)[:3] == [f"fu:sp:{FOCUS}", f"fu:rc:{FOCUS}", f"fu:cw:{FOCUS}"]

    spec_answer = (await chat.press(decoded, f"fu:sp:{FOCUS}"))[-1]["text"]
    assert "2014 Ford Focus: 9 " in spec_answer  # the configurations of the EPA file
    assert f"(2.0L 4 cyl, Automatic (AM6), Front-Wheel Drive): {specs}" in spec_answer
    assert "EPA/DOE fuel economy" in spec_answer

    recall_answer = (await chat.press(decoded, f"fu:rc:{FOCUS}"))[-1]["text"]
    assert recalls_lead in recall_answer
    assert all(f"- {c}" in recall_answer for c in recall_campaigns(shared_data, "FORD", "FOCUS", 2014))

    prompt = (await chat.press(decoded, f"fu:cw:{FOCUS}", until_buttons=None))[0]
    assert prompt["text"].startswith("🔀 ")
    assert FOCUS in prompt["text"]
    compared = await chat.say("2014 Honda Civic", reply_to=prompt)
    photo, _image = chart_of(bot, compared)
    assert photo["caption"].startswith("2014 Ford Focus vs 2014 Honda Civic")
    assert compared[-1]["text"].startswith(compare_header)
    assert compare_row in compared[-1]["text"]


# ---------------------------------------------------------------- several VINs: a bulk job, then /plan


async def test_several_vins_in_one_message_run_as_a_bulk_job_and_plan_shows_what_was_spent(
    bot: BotState, worker: None
) -> None:
    chat = Chat(bot, new_user("fr"))
    how = (await chat.command("bulk", until_buttons=None))[0]["text"]
    assert how.startswith("Envoyez-moi un fichier CSV ou texte")
    before = (await chat.command("plan", until_buttons=None))[0]["text"]
    assert before.startswith("Votre forfait : free")
    assert "VIN par lots restants aujourd'hui : 2000 sur 2000" in before

    offer = (await chat.say(f"{FOCUS}, {TAURUS} et {EXPLORER} ?", until_buttons="multi:"))[0]
    assert offer["text"].startswith("J'ai trouvé 3 VIN dans votre message.")
    assert button_data(offer) == ["multi:here", "multi:bulk"]

    seen = len(chat.sent())
    bot.push_callback(chat.person, offer, "multi:bulk")
    results = await bot.wait_for(lambda: [m for m in chat.sent()[seen:] if "document" in m], within_s=60)
    progress = [m for m in chat.sent()[seen:] if "document" not in m]
    assert len(progress) == 1, "progress is one message, edited as the job advances"
    assert progress[0]["text"].endswith("Terminé.")
    assert ": 3 VIN décodés sur 3 (100 %)." in progress[0]["text"]
    assert {str(e.params["message_id"]) for e in bot.calls_of("editMessageText", chat.id)} == {
        str(progress[0]["message_id"])
    }
    assert not button_data(bot.messages[chat.id][offer["message_id"]]), "the offer's buttons are gone"

    document = results[0]
    assert document["caption"].startswith("Résultats : 3 décodés, 0 non décodés, 0 lignes invalides")
    rows = list(csv.DictReader(io.StringIO(bot.uploads[document["message_id"]].decode())))
    by_vin = {r["input"]: r for r in rows}
    assert set(by_vin) == {FOCUS, TAURUS, EXPLORER}
    assert (by_vin[FOCUS]["model_year"], by_vin[FOCUS]["model"]) == ("2014", "Focus")
    assert (by_vin[EXPLORER]["model_year"], by_vin[EXPLORER]["model"]) == ("2013", "Explorer")

    after = (await chat.command("plan", until_buttons=None))[0]["text"]
    assert "VIN par lots restants aujourd'hui : 1997 sur 2000" in after, "the job's VINs are spent"
