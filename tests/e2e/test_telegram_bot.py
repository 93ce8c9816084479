"""The Telegram bot end to end: the real bot, long-polling a stand-in of the Bot API over HTTP.

`bot.app.run_polling` (what `vinbot bot` runs) is started in this test's event loop with
`TELEGRAM_API_BASE_URL` pointing at the stand-in (tests/standins/telegram_api.py), on the
session's PostgreSQL and Redis, with the offline planner. Tests push updates as Telegram
would and read what the bot sent back. One test runs the real `vinbot bot` process.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import ultravin
from bot_harness import make_settings, polling
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standins.telegram_api import BotState, TelegramStandIn, button_data, user

from agent.planner_offline import EXAMPLE_VIN
from tools.storage.models import Conversation, Feedback, User, UserVinHistory

pytestmark = pytest.mark.e2e

RunVinbot = Callable[..., subprocess.CompletedProcess[str]]  # the `run` fixture of tests/e2e/conftest.py

TOKEN = "4242424242:AAH-standin-token-for-tests-only-0123456789"
LIMITED_TOKEN = "4343434343:AAH-standin-token-limited-tests-0123456789"
BULK_TOKEN = "4444444444:AAH-standin-token-bulk-job-tests-0123456789"
BMW = "5UXWX9C54D0A15139"
_user_ids = itertools.count(int(time.time() * 1000) % 10_000_000 * 100)
GREETING = {"en": "Hello Ana!", "es": "¡Hola Ana!", "fr": "Bonjour Ana !", "de": "Hallo Ana!"}
SOURCES = {"en": "Sources:", "es": "Fuentes:", "fr": "Sources:", "de": "Quellen:"}


def new_user(language: str = "en") -> dict[str, Any]:
    return user(next(_user_ids), language)


@pytest.fixture(scope="module")
async def bot(
    telegram: tuple[TelegramStandIn, str],
    pg_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[BotState]:
    standin, url = telegram
    state = standin.bot(TOKEN)
    # The typing action from the first moment, so that the tests see it for fast answers too.
    settings = make_settings(
        pg_url, redis_url, tmp_path_factory.mktemp("bot-data"), url, TOKEN, typing_after_s=0
    )
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

    async def next_message(self, seen: int, *, with_buttons: str | None = None) -> dict[str, Any]:
        """Wait for a new bot message after the first `seen` (one with a button prefix, if given)."""

        def found() -> dict[str, Any] | None:
            for message in self.sent()[seen:]:
                if with_buttons is None or any(d.startswith(with_buttons) for d in button_data(message)):
                    return message
            return None

        try:
            result: dict[str, Any] = await self.state.wait_for(found, within_s=60)
        except TimeoutError:
            calls = [
                (c.method, {k: v for k, v in c.params.items() if k != "chat_id"})
                for c in self.state.calls[-8:]
            ]
            pytest.fail(
                f"no bot message came; sent: {[m.get('text') for m in self.sent()]}; last calls: {calls}"
            )
        return result

    async def command(self, name: str, *args: str, with_buttons: str | None = None) -> dict[str, Any]:
        seen = len(self.sent())
        self.state.push_command(self.person, name, *args)
        return await self.next_message(seen, with_buttons=with_buttons)

    async def say(
        self, text: str, *, reply_to: dict[str, Any] | None = None, with_buttons: str | None = None
    ) -> dict[str, Any]:
        seen = len(self.sent())
        self.state.push_text(self.person, text, reply_to=reply_to)
        return await self.next_message(seen, with_buttons=with_buttons)

    async def press(
        self, message: dict[str, Any], data: str, *, with_buttons: str | None = None
    ) -> dict[str, Any]:
        assert data in button_data(message), (data, button_data(message))
        seen = len(self.sent())
        self.state.push_callback(self.person, message, data)
        return await self.next_message(seen, with_buttons=with_buttons)

    async def press_and_see_edit(self, message: dict[str, Any], data: str) -> dict[str, Any]:
        edits = len(self.state.calls_of("editMessageText", self.id))
        self.state.push_callback(self.person, message, data)
        await self.state.wait_for(lambda: len(self.state.calls_of("editMessageText", self.id)) > edits)
        return self.state.messages[self.id][message["message_id"]]


@dataclass
class GroupMember(Chat):
    """One member of a group chat with the bot (chat type "group", a negative id), as Telegram sends it."""

    group_id: int = 0

    @property
    def id(self) -> int:
        return self.group_id

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.group_id, "type": "group", "title": "Fleet"}

    async def say(
        self, text: str, *, reply_to: dict[str, Any] | None = None, with_buttons: str | None = None
    ) -> dict[str, Any]:
        seen = len(self.sent())
        fields: dict[str, Any] = {"text": text}
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        message = self.state._user_message(self.person, chat_id=self.group_id, **fields)
        message["chat"] = self.chat
        self.state._push({"message": message})
        return await self.next_message(seen, with_buttons=with_buttons)

    async def press(
        self, message: dict[str, Any], data: str, *, with_buttons: str | None = None
    ) -> dict[str, Any]:
        # The stand-in marks every bot message "private"; Telegram gives the group's chat.
        return await super().press({**message, "chat": self.chat}, data, with_buttons=with_buttons)


def push_file(state: BotState, person: dict[str, Any], *, file_size: int, **fields: Any) -> str:
    """Queue a message carrying a file that claims `file_size` bytes: a photo, or a document
    when `fields` has `file_name` and `mime_type`; return its file_id."""
    info = {**state.add_file(b"tiny", "upload"), "file_size": file_size}
    if "file_name" in fields:
        content: dict[str, Any] = {"document": {**info, **fields}}
    else:
        content = {"photo": [{**info, "width": 4000, "height": 3000}]}
    state._push({"message": state._user_message(person, **content)})
    return str(info["file_id"])


def plate_image(vin: str) -> bytes:
    """A VIN plate photo: the VIN in a large font on a metal-grey plate, as a JPEG."""
    image = Image.new("RGB", (1280, 320), (196, 198, 192))
    draw = ImageDraw.Draw(image)
    draw.rectangle((16, 16, 1264, 304), outline=(60, 60, 60), width=6)
    draw.text(
        (60, 40), "VEHICLE IDENTIFICATION NUMBER", font=ImageFont.load_default(size=34), fill=(25, 25, 25)
    )
    draw.text((60, 130), vin, font=ImageFont.load_default(size=84), fill=(10, 10, 10))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


# ---------------------------------------------------------------- scripted conversations


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
async def test_start_decode_follow_up_and_rating_work_when_scripted_in_each_language(
    bot: BotState, db_engine: AsyncEngine, language: str
) -> None:
    chat = Chat(bot, new_user(language))

    hello = await chat.command("start")
    assert hello["text"].startswith(GREETING[language])
    assert button_data(hello) == [f"vin:{EXAMPLE_VIN}"]

    answer = await chat.press(hello, f"vin:{EXAMPLE_VIN}", with_buttons="fb:")
    assert "Honda" in answer["text"]
    assert "Accord" in answer["text"]
    assert SOURCES[language] in answer["text"]
    buttons = button_data(answer)
    assert buttons[:3] == [f"fu:sp:{EXAMPLE_VIN}", f"fu:rc:{EXAMPLE_VIN}", f"fu:cw:{EXAMPLE_VIN}"]
    assert buttons[3].startswith("fb:+:")
    assert buttons[4].startswith("fb:-:")
    assert bot.calls_of("sendChatAction", chat.id), "the typing action is shown while the assistant works"
    assert bot.calls_of("answerCallbackQuery")

    follow_up = await chat.press(answer, f"fu:sp:{EXAMPLE_VIN}", with_buttons="fb:")
    assert follow_up["message_id"] > answer["message_id"]
    assert follow_up["text"].strip()

    markups = len(bot.calls_of("editMessageReplyMarkup", chat.id))
    bot.push_callback(chat.person, answer, buttons[3])
    await bot.wait_for(lambda: len(bot.calls_of("editMessageReplyMarkup", chat.id)) > markups)
    assert not any(d.startswith("fb:") for d in button_data(bot.messages[chat.id][answer["message_id"]]))
    answer_id = int(buttons[3].rsplit(":", 1)[1])
    async with db_engine.connect() as conn:
        ratings = (await conn.execute(select(Feedback.rating).where(Feedback.message_id == answer_id))).all()
    assert [r.rating for r in ratings] == [1]


async def test_rated_answers_are_exported_as_eval_cases_when_asked(bot: BotState, run: RunVinbot) -> None:
    chat = Chat(bot, new_user("en"))
    question = f"what car is {BMW}?"
    answer = await chat.say(question, with_buttons="fb:")
    thumbs_down = next(d for d in button_data(answer) if d.startswith("fb:-:"))
    markups = len(bot.calls_of("editMessageReplyMarkup", chat.id))
    bot.push_callback(chat.person, answer, thumbs_down)
    await bot.wait_for(lambda: len(bot.calls_of("editMessageReplyMarkup", chat.id)) > markups)

    exported = run("eval", "export-feedback", "--rating", "down")
    assert exported.returncode == 0, exported.stderr
    cases = [json.loads(line) for line in exported.stdout.splitlines()]
    case = next(c for c in cases if c["turns"] == [question])
    assert case["expected"]["trajectory"] == [{"name": "decode_vin", "args": {"vin": BMW}}]
    assert {"feedback", "feedback-down", "needs-review", "telegram"} <= set(case["tags"])


async def test_commands_are_registered_in_four_languages_when_the_bot_starts(bot: BotState) -> None:
    assert set(bot.commands) == {"", "es", "fr", "de"}
    german = {c["command"]: c["description"] for c in bot.commands["de"]}
    assert set(german) == {
        "start",
        "help",
        "vin",
        "compare",
        "recalls",
        "history",
        "language",
        "bulk",
        "plan",
        "forget",
    }
    assert german["vin"] == "Eine FIN entschlüsseln: /vin <VIN>"


async def test_language_switch_is_stored_when_chosen_with_the_keyboard(bot: BotState) -> None:
    chat = Chat(bot, new_user("en"))
    menu = await chat.command("language")
    assert button_data(menu) == ["lang:en", "lang:es", "lang:fr", "lang:de"]
    edited = await chat.press_and_see_edit(menu, "lang:de")
    assert edited["text"] == "Ich antworte ab jetzt auf Deutsch."
    hello = await chat.command("start")
    assert hello["text"].startswith("Hallo Ana!")
    plan = await chat.command("plan")
    assert plan["text"].startswith("Dein Tarif: free")


async def test_help_plan_history_and_vin_commands_answer_when_sent(bot: BotState) -> None:
    chat = Chat(bot, new_user("fr"))
    help_text = (await chat.command("help"))["text"]
    assert "/bulk — Décoder un fichier de VIN" in help_text
    decoded = await chat.command("vin", BMW, with_buttons="fb:")
    assert "BMW" in decoded["text"]
    history = await chat.command("history", with_buttons="fb:")
    assert BMW[-6:] in history["text"]
    plan = (await chat.command("plan"))["text"]
    assert "Votre forfait : free" in plan
    assert "Messages restants aujourd'hui : 198 sur 200" in plan
    usage = await chat.command("vin")
    assert usage["text"].startswith("Envoyez /vin suivi d'un VIN")


async def test_several_vins_offer_a_bulk_job_and_can_be_answered_here_when_chosen(bot: BotState) -> None:
    chat = Chat(bot, new_user("en"))
    offer = await chat.say(f"what are {EXAMPLE_VIN} and {BMW}?")
    assert offer["text"].startswith("I found 2 VINs in your message.")
    assert button_data(offer) == ["multi:here", "multi:bulk"]
    answer = await chat.press(offer, "multi:here", with_buttons="fb:")
    assert "Honda" in answer["text"]
    assert "BMW" in answer["text"]


async def test_compare_with_asks_for_the_other_vehicle_and_answers_the_reply(bot: BotState) -> None:
    chat = Chat(bot, new_user("en"))
    answer = await chat.say(f"decode {EXAMPLE_VIN}", with_buttons="fu:")
    prompt = await chat.press(answer, f"fu:cw:{EXAMPLE_VIN}")
    assert prompt["text"].startswith("🔀 Compare 1HGCM82633A004352 with which vehicle?")
    seen = len(chat.sent())
    bot.push_text(chat.person, BMW, reply_to=prompt)
    compared = await chat.next_message(seen, with_buttons="fb:")
    assert compared["text"].strip()


async def test_every_member_of_a_group_chat_gets_answers_in_their_own_conversation(
    bot: BotState, db_engine: AsyncEngine
) -> None:
    group_id = -next(_user_ids)
    ana = GroupMember(bot, new_user("en"), group_id=group_id)
    ben = GroupMember(bot, new_user("es"), group_id=group_id)

    first = await ana.say(EXAMPLE_VIN, with_buttons="fb:")
    second = await ben.say(BMW, with_buttons="fb:")
    assert "Honda" in first["text"]
    assert "BMW" in second["text"]
    follow_up = await ben.press(second, f"fu:sp:{BMW}", with_buttons="fb:")
    again = await ana.say(f"what car is {BMW}?", with_buttons="fb:")
    assert "BMW" in again["text"]

    ratings = [next(d for d in button_data(m) if d.startswith("fb:+:")) for m in (first, second, follow_up)]
    assert len(set(ratings)) == 3, "each answer is rated as its own message"
    async with db_engine.connect() as conn:
        owners = dict(
            (
                await conn.execute(
                    select(Conversation.id, User.external_id)
                    .join(User, User.id == Conversation.user_id)
                    .where(Conversation.id.like(f"tg:{group_id}%"))
                )
            ).all()
        )
    assert owners == {
        f"tg:{group_id}:{ana.person['id']}": f"tg:{ana.person['id']}",
        f"tg:{group_id}:{ben.person['id']}": f"tg:{ben.person['id']}",
    }


async def test_forget_deletes_history_and_conversations_when_confirmed(
    bot: BotState, db_engine: AsyncEngine
) -> None:
    chat = Chat(bot, new_user("es"))
    await chat.say(BMW, with_buttons="fb:")
    confirm = await chat.command("forget")
    assert button_data(confirm) == ["forget:yes", "forget:no"]
    done = await chat.press_and_see_edit(confirm, "forget:yes")
    assert done["text"] == "Hecho. Borré 1 conversaciones y 1 búsquedas."
    async with db_engine.connect() as conn:
        user_id = (
            await conn.execute(select(User.id).where(User.external_id == f"tg:{chat.id}"))
        ).scalar_one()
        conversations = await conn.scalar(select(func.count()).where(Conversation.user_id == user_id))
        lookups = await conn.scalar(select(func.count()).where(UserVinHistory.user_id == user_id))
    assert (conversations, lookups) == (0, 0)


async def test_a_photo_of_a_vin_plate_is_read_and_decoded_when_confirmed(bot: BotState) -> None:
    chat = Chat(bot, new_user("de"))
    seen = len(chat.sent())
    bot.push_photo(chat.person, plate_image(EXAMPLE_VIN))
    question = await chat.next_message(seen)
    assert question["text"].startswith("Ist das deine FIN?")
    assert f"vin:{EXAMPLE_VIN}" in button_data(question)
    assert question["html"].count("<code>") == 1
    answer = await chat.press(question, f"vin:{EXAMPLE_VIN}", with_buttons="fb:")
    assert "Honda" in answer["text"]


async def test_an_oversized_photo_or_file_is_refused_before_it_is_downloaded(bot: BotState) -> None:
    chat = Chat(bot, new_user("es"))
    cases = [
        ({}, 12_000_000, "10 MB"),
        ({"file_name": "plate.jpg", "mime_type": "image/jpeg"}, 12_000_000, "10 MB"),
        ({"file_name": "flota.csv", "mime_type": "text/csv"}, 6_000_000, "5 MB"),
    ]
    for fields, size, limit in cases:
        seen = len(chat.sent())
        file_id = push_file(bot, chat.person, file_size=size, **fields)
        refused = await chat.next_message(seen)
        assert refused["text"] == f"Ese archivo es demasiado grande; envía como máximo {limit}.", fields
        assert not [c for c in bot.calls_of("getFile") if c.params.get("file_id") == file_id], fields
    plan = await chat.command("plan")
    assert "200 de 200" in plan["text"], "a refused file spends no daily message"


async def test_a_photo_is_read_from_its_largest_size_that_is_not_too_large(bot: BotState) -> None:
    chat = Chat(bot, new_user("es"))
    small = {**bot.add_file(plate_image(EXAMPLE_VIN), "photo.jpg"), "width": 1280, "height": 320}
    huge = {**bot.add_file(b"tiny", "photo.jpg"), "file_size": 12_000_000, "width": 9000, "height": 2250}
    seen = len(chat.sent())
    bot._push({"message": bot._user_message(chat.person, photo=[small, huge])})
    question = await chat.next_message(seen)
    assert question["text"].startswith("¿Es este tu VIN?")
    assert f"vin:{EXAMPLE_VIN}" in button_data(question)
    assert not [c for c in bot.calls_of("getFile") if c.params.get("file_id") == huge["file_id"]]


async def test_a_failing_handler_gets_an_apology_and_the_bot_keeps_running(
    bot: BotState, caplog: pytest.LogCaptureFixture
) -> None:
    chat = Chat(bot, new_user("fr"))
    bot.fail("getFile", "file is too big")
    with caplog.at_level(logging.DEBUG):
        seen = len(chat.sent())
        bot.push_photo(chat.person, b"not even an image")
        apology = await chat.next_message(seen)
        assert (
            apology["text"] == "Désolé, quelque chose s'est mal passé de mon côté. Réessayez dans un instant."
        )
        still_there = await chat.say(EXAMPLE_VIN, with_buttons="fb:")
    assert "Honda" in still_there["text"]
    errors = [r for r in caplog.records if r.name == "bot.handlers" and r.levelno == logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None
    secret = TOKEN.split(":", 1)[1]
    assert not [r.name for r in caplog.records if secret in r.getMessage()], "no log line carries the token"


async def test_limits_are_explained_with_a_retry_time_when_the_daily_quota_is_spent(
    telegram: tuple[TelegramStandIn, str], pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    standin, url = telegram
    state = standin.bot(LIMITED_TOKEN)
    settings = make_settings(pg_url, redis_url, tmp_path, url, LIMITED_TOKEN, messages_per_day_free=2)
    async with polling(settings, state):
        chat = Chat(state, new_user("de"))
        await chat.say("hallo", with_buttons="fb:")
        await chat.say("hallo", with_buttons="fb:")
        refused = await chat.say("hallo")
    assert refused["text"].startswith("Du hast dein Limit vorerst erreicht. Bitte versuch es in ")
    assert refused["text"].endswith(" UTC).")
    assert "Stunden" in refused["text"]


# ---------------------------------------------------------------- bulk jobs


async def test_a_csv_file_becomes_a_bulk_job_with_one_progress_message_and_a_results_file(
    telegram: tuple[TelegramStandIn, str], pg_url: str, redis_url: str, tmp_path: Path, worker: None
) -> None:
    standin, url = telegram
    state = standin.bot(BULK_TOKEN)
    vins = [str(v) for v in ultravin.generate(57, seed=5, now=datetime(2026, 6, 1))]  # noqa: DTZ001
    lines = ["vin,model_year", *vins, "NOT-A-VIN", "1HGCM82633A00435"]
    settings = make_settings(pg_url, redis_url, tmp_path, url, BULK_TOKEN)
    async with polling(settings, state):
        chat = Chat(state, new_user("es"))
        seen = len(chat.sent())
        state.push_document(chat.person, "\n".join(lines).encode(), "flota.csv", "text/csv")
        results = await state.wait_for(
            lambda: [m for m in chat.sent()[seen:] if "document" in m], within_s=120
        )
    progress = [m for m in chat.sent()[seen:] if m.get("text", "").startswith("Trabajo por lotes")]
    assert len(progress) == 1, "progress is one message, edited as the job advances"
    assert progress[0]["text"].endswith("Terminado.")
    assert "2 líneas no eran VIN válidos." in progress[0]["text"]
    edits = state.calls_of("editMessageText", chat.id)
    assert {str(e.params["message_id"]) for e in edits} == {str(progress[0]["message_id"])}
    document = results[0]
    assert document["document"]["file_name"].endswith(".csv")
    assert document["caption"].startswith("Resultados:")
    rows = list(csv.DictReader(io.StringIO(state.uploads[document["message_id"]].decode())))
    assert [int(r["line"]) for r in rows] == list(range(2, len(lines) + 1))
    assert {r["input"] for r in rows[:57]} == set(vins)


# ---------------------------------------------------------------- the real process


async def test_vinbot_bot_process_answers_and_stops_cleanly_and_never_logs_the_token(
    telegram: tuple[TelegramStandIn, str], pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    standin, url = telegram
    token = "4545454545:AAH-standin-token-process-tests-0123456789"
    state = standin.bot(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VINBOT_", "OPENAI_", "TELEGRAM_"))}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=redis_url,
        VINBOT_DATA_DIR=str(tmp_path / "data"),
        VINBOT_TELEGRAM__POLL_TIMEOUT_S="1",
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_API_BASE_URL=url,
    )
    log = tmp_path / "bot.log"
    with log.open("wb") as output:  # a file, not a pipe: -vv writes more than a pipe buffer holds
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("vinbot")), "-vv", "bot", env=env, stdout=output, stderr=output
        )
    try:
        await state.wait_for(
            lambda: state.calls_of("deleteWebhook") or process.returncode is not None, within_s=120
        )
        chat = Chat(state, new_user("es"))
        hello = await chat.command("start")
        assert hello["text"].startswith("¡Hola Ana!")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=60)
    logs = log.read_text()
    assert process.returncode == 0, logs[-3000:]
    assert "getUpdates" in logs, "-vv logs the Bot API calls"
    assert token.split(":", 1)[1] not in logs
