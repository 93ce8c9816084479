"""Telegram handlers: turn updates into `Assistant` calls and capability calls, render the results.

Handlers are methods of `Handlers`, which holds the services the composition root
built (`bot.app`); nothing is looked up in `bot_data`. Expected errors (`AppError`)
and unexpected ones both end in `Handlers.on_error`, the one error handler: it maps
the first to friendly text, logs the second with its context and apologises.

Callback data (at most 64 bytes) carries everything a button needs, so a button
works in any process and after a restart:

    vin:<VIN>           decode this VIN (sample button, OCR confirmation)
    fu:<sp|rc|cw>:<VIN> follow-up after a decode: specs, recalls, compare with...
    fb:<+|->:<id>       rate the answer stored as messages.id = <id>
    lang:<code>         /language choice
    forget:<yes|no>     /forget confirmation
    multi:<here|bulk>   several VINs in one message: answer here or run a bulk job
    ocr:no              none of the VINs read from a photo
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from babel.dates import format_timedelta
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    Chat,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import CallbackContext

from agent.answer import LANGUAGES, Answer, Language
from agent.assistant import Asker, Assistant
from agent.planner_offline import EXAMPLE_VIN
from bot import render
from bot.i18n import LANGUAGE_NAMES, N_, Texts, Translator, language_of
from bot.ocr import VinPlateReader, VinReading
from bot.request import AnswerBot
from tools import bulk
from tools import vin as vins
from tools.bulk import BulkDeps, InputRow, JobStatus
from tools.domain.vin import Vin, find_vins
from tools.errors import AppError, InvalidVin, RateLimited
from tools.observability import log_context
from tools.providers.base import Limit, LimitCheck, RateLimiter
from tools.settings import LimitSettings, TelegramSettings, Tier
from tools.storage import conversation_repo, feedback_repo, vin_repo
from tools.storage.session import single_statements, transaction
from tools.storage.user_repo import UserRecord, find_or_create_user, set_language
from tools.vin import Caller, VinDeps

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
TYPING_EVERY_S = 4.0
MAX_INLINE_VINS = 20  # more than this in one message: only a bulk job (as the agent's decode_vins)
MAX_FILE_BYTES = 5_000_000  # a file of VINs
MAX_PHOTO_BYTES = 10_000_000  # a photo, or an image sent as a file
MAX_JOB_WATCH = timedelta(hours=2)
MAX_COMPARED_VINS = 4  # VINs of a comparison named by their vehicle (the assistant compares up to 4)
COMPARE_MARK = "🔀"

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", N_("Start and see what I can do")),
    ("help", N_("How to use the bot")),
    ("vin", N_("Decode a VIN: /vin <VIN>")),
    ("compare", N_("Compare vehicles: /compare <a> vs <b>")),
    ("recalls", N_("Recalls for a vehicle")),
    ("history", N_("The VINs you looked up")),
    ("language", N_("Choose the language")),
    ("bulk", N_("Decode a file of VINs")),
    ("plan", N_("Your plan and what is left today")),
    ("forget", N_("Delete your history and conversations")),
)

# The application's bot is an `AnswerBot` (`bot.app.build_application`).
Context = CallbackContext[AnswerBot, dict[Any, Any], dict[Any, Any], dict[Any, Any]]


@dataclass(frozen=True)
class BotServices:
    """What the handlers use, built once per process by the composition root (`bot.app`)."""

    assistant: Assistant
    sessions: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    texts: Texts
    ocr: VinPlateReader
    telegram: TelegramSettings
    limits: LimitSettings
    bulk: BulkDeps | None = None
    vin: VinDeps | None = None  # names the VINs of a comparison (`Handlers.name_vins`)


def conversation_id(chat: Chat, sender: User | None) -> str:
    """Return the assistant's conversation of `sender` in `chat`, the one place that builds it.

    A conversation belongs to one user (`conversation_repo.open_conversation`), so a chat
    with several members has one conversation per member, `tg:<chat id>:<user id>`; a
    private chat keeps `tg:<chat id>`, the id it always had. `sender` is None only for
    updates without a user (channel posts), which no handler answers.
    """
    if sender is None or chat.type == ChatType.PRIVATE:
        return f"tg:{chat.id}"
    return f"tg:{chat.id}:{sender.id}"


@dataclass(frozen=True)
class Person:
    """The Telegram user behind an update, as stored, their chat and their conversation in it."""

    user: UserRecord
    chat_id: int
    conversation_id: str
    language: Language
    t: Translator

    @property
    def tier(self) -> Tier:
        """The user's tier."""
        return _tier(self.user.tier)

    @property
    def asker(self) -> Asker:
        """The assistant's view of this user."""
        return Asker(
            external_id=self.user.external_id,
            channel=CHANNEL,
            username=self.user.username,
            language=self.language,
            tier=self.tier,
        )

    @property
    def caller(self) -> Caller:
        """The capabilities' view of this user."""
        return Caller(user_id=self.user.id, tier=self.tier, channel=CHANNEL)


def _tier(value: str) -> Tier:
    return "pro" if value == "pro" else "premium" if value == "premium" else "free"


def _language(value: str) -> Language:
    return next((lang for lang in LANGUAGES if lang == value), "en")


def _markup(rows: Sequence[Sequence[tuple[str, str]]]) -> InlineKeyboardMarkup | None:
    buttons = [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows if row]
    return InlineKeyboardMarkup(buttons) if buttons else None


async def register_commands(bot: Bot, texts: Texts) -> None:
    """Publish the command list in every language (`setMyCommands` with `language_code`)."""
    for language in LANGUAGES:
        t = texts.of(language)
        commands = [BotCommand(name, t(description)) for name, description in COMMANDS]
        await bot.set_my_commands(commands, language_code=None if language == "en" else language)


class Handlers:
    """Every handler of the bot, over the services it was built with."""

    def __init__(self, services: BotServices) -> None:
        self.s = services

    # ------------------------------------------------------------------ who and limits

    async def person(self, update: Update) -> Person:
        """Return the user behind `update`, creating them on first contact."""
        sender, chat = update.effective_user, update.effective_chat
        if sender is None or chat is None:
            raise ValueError("an update without a sender or chat reached a user handler")
        async with single_statements(self.s.sessions) as db:
            user = await find_or_create_user(
                db, f"tg:{sender.id}", username=sender.username, language=language_of(sender.language_code)
            )
        language = _language(user.language)
        return Person(
            user=user,
            chat_id=chat.id,
            conversation_id=conversation_id(chat, sender),
            language=language,
            t=self.s.texts.of(language),
        )

    def daily_message(self, person: Person) -> LimitCheck:
        """Return one of the user's daily messages (by tier), to spend."""
        limit = Limit(self.s.telegram.messages_per_day(person.tier), timedelta(days=1))
        return LimitCheck(f"user:{person.user.id}:telegram:day", limit)

    async def spend_message(self, person: Person) -> None:
        """Spend one of the user's daily messages (by tier); raise `RateLimited` when none is left."""
        await self.s.limiter.acquire_all([self.daily_message(person)])

    # ------------------------------------------------------------------ commands

    async def start(self, update: Update, context: Context) -> None:
        """Greet in the user's language, say what the bot does, offer a sample VIN."""
        person, message = await self.person(update), _message(update)
        t = person.t
        name = render.escape(message.from_user.first_name if message.from_user else "")
        text = t("Hello {name}! I am vinbot, your vehicle assistant.", name=name) + "\n\n" + self._skills(t)
        markup = _markup([[(t("Try a sample VIN"), f"vin:{EXAMPLE_VIN}")]])
        await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)

    async def help(self, update: Update, context: Context) -> None:
        """List the commands."""
        person, message = await self.person(update), _message(update)
        t = person.t
        lines = [f"/{name} — {render.escape(t(description))}" for name, description in COMMANDS]
        text = self._skills(t) + "\n\n" + "\n".join(lines)
        await message.reply_text(text, parse_mode=ParseMode.HTML)

    def _skills(self, t: Translator) -> str:
        return render.escape(
            t(
                "Send me a VIN and I will tell you what vehicle it is. Ask about specs, recalls or "
                "comparisons, send a photo of a VIN plate, or a CSV file of VINs for a bulk job."
            )
        )

    async def vin(self, update: Update, context: Context) -> None:
        """`/vin <VIN>`: decode through the assistant."""
        person = await self.person(update)
        if not context.args:
            await _message(update).reply_text(
                person.t("Send /vin followed by a VIN, e.g. /vin {vin}", vin=EXAMPLE_VIN)
            )
            return
        await self.ask(context.bot, person, " ".join(context.args))

    async def compare(self, update: Update, context: Context) -> None:
        """`/compare <a> vs <b>`: the comparison, through the assistant."""
        person = await self.person(update)
        if not context.args:
            await _message(update).reply_text(
                person.t("Send /compare followed by two vehicles, e.g. /compare <VIN> vs <VIN>")
            )
            return
        vehicles = await self.name_vins(person, " ".join(context.args))
        await self.ask(
            context.bot, person, person.t("Please compare these vehicles: {vehicles}", vehicles=vehicles)
        )

    async def recalls(self, update: Update, context: Context) -> None:
        """`/recalls [vehicle]`: recalls of a vehicle, or of the last one discussed."""
        person = await self.person(update)
        if context.args:
            question = person.t("Are there any recalls for {vehicle}?", vehicle=" ".join(context.args))
        else:
            question = person.t("Are there any recalls for my last vehicle?")
        await self.ask(context.bot, person, question)

    async def history(self, update: Update, context: Context) -> None:
        """`/history`: the user's look-ups, through the assistant."""
        person = await self.person(update)
        await self.ask(context.bot, person, person.t("Show my lookup history"))

    async def language(self, update: Update, context: Context) -> None:
        """`/language`: offer the four languages."""
        person = await self.person(update)
        rows = [[(name, f"lang:{code}") for code, name in LANGUAGE_NAMES.items()]]
        await _message(update).reply_text(person.t("Choose your language:"), reply_markup=_markup(rows))

    async def bulk_help(self, update: Update, context: Context) -> None:
        """`/bulk`: explain how to send a file of VINs."""
        person = await self.person(update)
        await _message(update).reply_text(
            person.t(
                "Send me a CSV or text file with one VIN per line (VIN,YEAR is fine too). "
                "I will decode it as a bulk job and send you the results as a file."
            )
        )

    async def plan(self, update: Update, context: Context) -> None:
        """`/plan`: the tier and what is left of today's quotas (read without spending)."""
        person = await self.person(update)
        uid, tier = person.user.id, person.tier
        day = timedelta(days=1)
        quotas = {
            "messages": (f"user:{uid}:telegram:day", self.s.telegram.messages_per_day(tier)),
            "decodes": (f"user:{uid}:decodes:day", self.s.limits.decodes_per_day(tier)),
        }
        if self.s.bulk is not None:
            quotas["bulk"] = (f"user:{uid}:bulk:day", self.s.bulk.settings.vins_per_day(tier))
        left = {
            name: (await self.s.limiter.hit(key, Limit(n, day), cost=0)).remaining
            for name, (key, n) in quotas.items()
        }
        t = person.t
        lines = [t("Your plan: {tier}", tier=tier)]
        lines.append(
            t("Messages left today: {left} of {total}", left=left["messages"], total=quotas["messages"][1])
        )
        lines.append(
            t("VIN decodes left today: {left} of {total}", left=left["decodes"], total=quotas["decodes"][1])
        )
        if "bulk" in left:
            lines.append(
                t("Bulk VINs left today: {left} of {total}", left=left["bulk"], total=quotas["bulk"][1])
            )
        await _message(update).reply_text("\n".join(lines))

    async def forget(self, update: Update, context: Context) -> None:
        """`/forget`: ask for confirmation before deleting anything."""
        person = await self.person(update)
        t = person.t
        rows = [[(t("Yes, delete everything"), "forget:yes"), (t("Cancel"), "forget:no")]]
        text = t("This deletes your lookup history, your conversations and your ratings. Continue?")
        await _message(update).reply_text(text, reply_markup=_markup(rows))

    async def unknown_command(self, update: Update, context: Context) -> None:
        """Any other command: the help text."""
        await self.help(update, context)

    # ------------------------------------------------------------------ messages

    async def text(self, update: Update, context: Context) -> None:
        """Text to the assistant; several VINs: offer a bulk job; a reply to a compare prompt: compare."""
        person, message = await self.person(update), _message(update)
        text = message.text or ""
        prompt = message.reply_to_message
        if (
            prompt is not None
            and (prompt.text or "").startswith(COMPARE_MARK)
            and (base := find_vins(prompt.text or ""))
        ):
            text = person.t(
                "Please compare {a} with {b}",
                a=await self.name_vins(person, base[0]),
                b=await self.name_vins(person, text),
            )
        elif len(find_vins(text)) >= 2:
            await self.offer_bulk(message, person, len(find_vins(text)))
            return
        await self.ask(context.bot, person, text)

    async def name_vins(self, person: Person, text: str) -> str:
        """Write the VINs in `text` as their vehicles ("2014 FORD Focus"), for a comparison.

        A comparison is between vehicles, and a question that carries a VIN is answered
        with that VIN's decode: so the bot decodes the VINs of a comparison itself (the
        user's decode, spending their quota) and asks about the vehicles by name.
        """
        if self.s.vin is None:
            return text
        for vin in find_vins(text)[:MAX_COMPARED_VINS]:
            try:
                vehicle = await vins.decode(vin, deps=self.s.vin, caller=person.caller)
            except InvalidVin:  # left as written: the assistant explains it
                continue
            if vehicle.valid and vehicle.model_year and vehicle.make and vehicle.model:
                name = f"{vehicle.model_year} {vehicle.make} {vehicle.model}"
                text = re.sub(re.escape(vin), name.replace("\\", r"\\"), text, flags=re.IGNORECASE)
        return text

    async def offer_bulk(self, message: Message, person: Person, count: int) -> None:
        """Several VINs in one message: answer here (up to 20) or run them as a bulk job."""
        t = person.t
        row = [(t("Run a bulk job"), "multi:bulk")]
        if count <= MAX_INLINE_VINS:
            row.insert(0, (t("Answer here"), "multi:here"))
        text = t(
            "I found {count} VINs in your message. Decode them as a bulk job (results as a file)?",
            count=count,
        )
        await message.reply_text(text, reply_markup=_markup([row]), do_quote=True)

    async def photo(self, update: Update, context: Context) -> None:
        """A photo (or image file) of a VIN plate: read it, then ask "Is this your VIN?".

        The size is checked before anything is downloaded or a daily message is spent: an
        image larger than `MAX_PHOTO_BYTES` gets the "too large" reply, never a cut-off read.
        """
        person, message = await self.person(update), _message(update)
        if message.photo:  # the sizes of one photo, smallest first: the largest that fits
            fitting = [p for p in message.photo if not _larger(p.file_size, MAX_PHOTO_BYTES)]
            chosen = fitting[-1] if fitting else message.photo[-1]
            file_id, size = chosen.file_id, chosen.file_size
        elif message.document:
            file_id, size = message.document.file_id, message.document.file_size
        else:
            return
        if _larger(size, MAX_PHOTO_BYTES):
            await self.too_large(message, person, MAX_PHOTO_BYTES)
            return
        await self.spend_message(person)
        async with typing(context.bot, person.chat_id, after_s=self.s.telegram.typing_after_s):
            image = await self.download(context.bot, file_id, MAX_PHOTO_BYTES)
            if image is None:
                await self.too_large(message, person, MAX_PHOTO_BYTES)
                return
            readings = await self.s.ocr.read_vins(image)
        await self.confirm_vins(message, person, readings)

    async def download(self, bot: Bot, file_id: str, limit: int) -> bytes | None:
        """Return the file's bytes, or None when it is larger than `limit` (checked before downloading)."""
        file = await bot.get_file(file_id)
        if _larger(file.file_size, limit):
            return None
        data = bytes(await file.download_as_bytearray())
        return None if len(data) > limit else data

    async def too_large(self, message: Message, person: Person, limit: int) -> None:
        """Say that the file is over `limit` bytes."""
        await message.reply_text(
            person.t("That file is too large; send at most {size} MB.", size=limit // 1_000_000)
        )

    async def confirm_vins(self, message: Message, person: Person, readings: Sequence[VinReading]) -> None:
        """Offer the VINs read from a photo, with their check-digit-valid corrections."""
        t = person.t
        if not readings:
            await message.reply_text(
                t(
                    "I could not find a VIN in this photo. Try a sharp, straight photo of the plate, "
                    "or type the VIN."
                )
            )
            return
        best = readings[0]
        lines = [render.escape(t("Is this your VIN?")), f"<code>{best.read}</code>"]
        if not best.valid:
            lines.append(
                render.escape(
                    t(
                        "Its check digit does not match, so a character may be misread. "
                        "Did you mean one of these?"
                    )
                )
            )
        choices = list(
            dict.fromkeys([r.read for r in readings] + [c for r in readings for c in r.corrections])
        )[:6]
        rows = [[(vin, f"vin:{vin}")] for vin in choices] + [[(t("None of these"), "ocr:no")]]
        await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML, reply_markup=_markup(rows))

    async def document(self, update: Update, context: Context) -> None:
        """A CSV or text file: a bulk job, with its progress in one edited message."""
        person, message = await self.person(update), _message(update)
        document = message.document
        if document is None:
            return
        if (document.mime_type or "").startswith("image/"):
            await self.photo(update, context)  # checks the image against MAX_PHOTO_BYTES first
            return
        if _larger(document.file_size, MAX_FILE_BYTES):
            await self.too_large(message, person, MAX_FILE_BYTES)
            return
        raw = await self.download(context.bot, document.file_id, MAX_FILE_BYTES)
        if raw is None:
            await self.too_large(message, person, MAX_FILE_BYTES)
            return
        rows = bulk.parse_text(raw.decode("utf-8-sig", errors="replace"))
        await self.start_job(context, message, person, rows, document.file_name)

    async def start_job(
        self, context: Context, message: Message, person: Person, rows: list[InputRow], name: str | None
    ) -> None:
        """Submit a bulk job and watch it: one message edited as it advances, then the results file."""
        if self.s.bulk is None:
            await message.reply_text(person.t("Bulk jobs are not available on this server."))
            return
        status = await bulk.submit(rows, deps=self.s.bulk, caller=person.caller, source_name=name)
        progress = await message.reply_text(self.progress_text(person.t, status))
        context.application.create_task(
            self.watch_job(context.bot, progress, person, status), name=f"job-{status.id}"
        )

    def progress_text(self, t: Translator, status: JobStatus) -> str:
        """One line of progress: lines, done of total, percent, invalid lines."""
        p = status.progress
        text = t(
            "Bulk job {job}: {done} of {total} VINs decoded ({percent}%).",
            job=status.id[:8],
            done=p.done + p.failed,
            total=p.total,
            percent=round(p.percent),
        )
        if status.invalid:
            text += " " + t("{invalid} lines were not valid VINs.", invalid=status.invalid)
        if status.finished:
            text += " " + (t("Done.") if status.status == "done" else t("Cancelled."))
        return text

    async def watch_job(self, bot: Bot, progress: Message, person: Person, status: JobStatus) -> None:
        """Edit the progress message as the job advances; send the results file when it ends."""
        deps, shown = self.s.bulk, progress.text
        if deps is None:
            return
        deadline = datetime.now(UTC) + MAX_JOB_WATCH
        while not status.finished and datetime.now(UTC) < deadline:
            await asyncio.sleep(self.s.telegram.progress_interval_s)
            status = await bulk.get_status(status.id, deps=deps, caller=person.caller)
            if (text := self.progress_text(person.t, status)) != shown:
                with contextlib.suppress(BadRequest):  # "message is not modified"
                    await progress.edit_text(text)
                shown = text
        if status.finished:
            await self.send_results(bot, progress, person, status)

    async def send_results(self, bot: Bot, progress: Message, person: Person, status: JobStatus) -> None:
        """Send a finished job's results as a CSV document."""
        deps = self.s.bulk
        if deps is None:
            return
        rows = bulk.iter_results(status.id, deps=deps, caller=person.caller)
        data = "".join([piece async for piece in bulk.iter_rendered(rows, "csv")]).encode()
        p = status.progress
        caption = person.t(
            "Results: {ok} decoded, {failed} not decoded, {invalid} invalid lines.",
            ok=p.done,
            failed=p.failed,
            invalid=status.invalid,
        )
        await bot.send_document(
            person.chat_id,
            data,
            filename=f"vinbot-{status.id[:8]}.csv",
            caption=caption,
            reply_to_message_id=progress.message_id,
        )

    # ------------------------------------------------------------------ the assistant

    async def ask(self, bot: AnswerBot, person: Person, text: str) -> None:
        """Ask the assistant with the typing action on, then send the answer with its buttons.

        The assistant spends one of the user's daily messages with its own limits (one
        round trip to Redis; a refused question spends none of them).
        """
        asker = replace(person.asker, limits=(self.daily_message(person),))
        with log_context(conversation_id=person.conversation_id):
            async with typing(bot, person.chat_id, after_s=self.s.telegram.typing_after_s):
                answer = await self.s.assistant.ask(text, conversation_id=person.conversation_id, asker=asker)
            await self.send_answer(bot, person, answer)

    async def send_answer(self, bot: AnswerBot, person: Person, answer: Answer) -> None:
        """Send the answer as HTML messages, its charts as photos, and buttons under the last message."""
        answer_id = answer.message_id  # the stored answer the 👍/👎 buttons rate
        t = person.t
        footer = render.sources_footer(answer.sources, label=t("Sources"))
        for photo, title in _attachments(answer):  # a chart carries its sources, even when forwarded
            caption = render.caption(title, footer=footer)
            await bot.send_photo(person.chat_id, photo, caption=caption or None, parse_mode=ParseMode.HTML)
        rows = [_follow_ups(t, answer)]
        if answer_id is not None:
            rows.append([("👍", f"fb:+:{answer_id}"), ("👎", f"fb:-:{answer_id}")])
        messages = render.render(answer.answer, footer=footer)
        for i, html in enumerate(messages):
            last = i == len(messages) - 1
            await bot.send_html(person.chat_id, html, buttons=rows if last else ())

    # ------------------------------------------------------------------ buttons

    async def button(self, update: Update, context: Context) -> None:
        """Every inline button: dispatch on the callback data's prefix."""
        query = update.callback_query
        if query is None or not query.data:
            return
        person = await self.person(update)
        kind, _, rest = query.data.partition(":")
        route = {
            "vin": self.on_vin,
            "fu": self.on_follow_up,
            "fb": self.on_feedback,
            "lang": self.on_language,
            "forget": self.on_forget,
            "multi": self.on_multi,
            "ocr": self.on_ocr,
        }
        await route.get(kind, self.on_stale)(query, context, person, rest)

    async def on_vin(self, query: CallbackQuery, context: Context, person: Person, vin: str) -> None:
        await query.answer()
        await self.ask(context.bot, person, vin)

    async def on_follow_up(self, query: CallbackQuery, context: Context, person: Person, rest: str) -> None:
        kind, _, vin = rest.partition(":")
        t = person.t
        await query.answer()
        if kind == "cw":
            text = f"{COMPARE_MARK} " + t(
                "Compare {vin} with which vehicle? Reply with a VIN or a make and model.", vin=vin
            )
            await context.bot.send_message(person.chat_id, text, reply_markup=ForceReply(selective=True))
            return
        question = (
            t("What are the fuel economy (MPG), horsepower and annual fuel cost of {vin}?", vin=vin)
            if kind == "sp"
            else t("Are there any recalls for {vin}?", vin=vin)
        )
        await self.ask(context.bot, person, question)

    async def on_feedback(self, query: CallbackQuery, context: Context, person: Person, rest: str) -> None:
        sign, _, raw_id = rest.partition(":")
        async with transaction(self.s.sessions) as session:
            stored = raw_id.isdigit() and await feedback_repo.record(
                session,
                user_id=person.user.id,
                message_id=int(raw_id),
                rating=1 if sign == "+" else -1,
                channel=CHANNEL,
            )
        await query.answer(
            person.t("Thanks for the feedback!")
            if stored
            else person.t("That answer is no longer available.")
        )
        message = query.message
        if stored and isinstance(message, Message) and message.reply_markup is not None:
            rows = [
                [b for b in row if not str(b.callback_data).startswith("fb:")]
                for row in message.reply_markup.inline_keyboard
            ]
            await query.edit_message_reply_markup(InlineKeyboardMarkup([r for r in rows if r]))

    async def on_language(self, query: CallbackQuery, context: Context, person: Person, code: str) -> None:
        language = _language(code)
        async with transaction(self.s.sessions) as session:
            await set_language(session, person.user.id, language)
        await query.answer()
        t = self.s.texts.of(language)
        await query.edit_message_text(
            t("I will answer in {language} from now on.", language=LANGUAGE_NAMES[language])
        )

    async def on_forget(self, query: CallbackQuery, context: Context, person: Person, choice: str) -> None:
        await query.answer()
        if choice != "yes":
            await query.edit_message_text(person.t("Nothing was deleted."))
            return
        async with transaction(self.s.sessions) as session:
            lookups = await vin_repo.forget_history(session, person.user.id)
            await feedback_repo.forget_feedback(session, person.user.id)
            conversations = await conversation_repo.forget_conversations(session, person.user.id)
        await query.edit_message_text(
            person.t(
                "Done. I deleted {conversations} conversations and {lookups} lookups.",
                conversations=conversations,
                lookups=lookups,
            )
        )

    async def on_multi(self, query: CallbackQuery, context: Context, person: Person, choice: str) -> None:
        await query.answer()
        message = query.message if isinstance(query.message, Message) else None
        original = message.reply_to_message if message is not None else None
        if message is None or original is None or not original.text:
            await context.bot.send_message(
                person.chat_id, person.t("I cannot see the original message any more; please send it again.")
            )
            return
        await message.edit_reply_markup(None)
        if choice == "here":
            await self.ask(context.bot, person, original.text)
            return
        await self.start_job(context, original, person, bulk.rows_from_list(find_vins(original.text)), None)

    async def on_ocr(self, query: CallbackQuery, context: Context, person: Person, rest: str) -> None:
        await query.answer()
        await context.bot.send_message(
            person.chat_id, person.t("Then please type the VIN, or send a sharper photo.")
        )

    async def on_stale(self, query: CallbackQuery, context: Context, person: Person, rest: str) -> None:
        await query.answer(person.t("This button is no longer active."))

    # ------------------------------------------------------------------ the one error handler

    async def on_error(self, update: object, context: Context) -> None:
        """Map expected errors to friendly text; log anything else with its context and apologise."""
        error = context.error
        chat = update.effective_chat if isinstance(update, Update) else None
        user = update.effective_user if isinstance(update, Update) else None
        t = self.s.texts.of(language_of(user.language_code if user else None))
        if isinstance(error, AppError):
            logger.info("update failed with %s", error.code)
            text = self.explain(t, error)
        else:
            update_id = update.update_id if isinstance(update, Update) else None
            logger.error("update %s in chat %s failed", update_id, chat.id if chat else None, exc_info=error)
            text = t("Sorry, something went wrong on my side. Please try again in a moment.")
        if chat is not None:
            try:
                await context.bot.send_message(chat.id, text)
            except TelegramError as e:
                logger.warning("could not send the error reply: %s", type(e).__name__)

    def explain(self, t: Translator, error: AppError) -> str:
        """Return friendly text for an expected error, in the user's language."""
        if isinstance(error, RateLimited):
            wait = timedelta(seconds=max(1.0, error.retry_after))
            at = (datetime.now(UTC) + wait).strftime("%H:%M")
            return t(
                "You have reached your limit for now. Please try again in {wait} (at {time} UTC).",
                wait=format_timedelta(wait, locale=t.language),
                time=at,
            )
        if isinstance(error, InvalidVin):
            return t(
                "That does not look like a valid VIN: a VIN has 17 letters and digits, without I, O or Q."
            )
        messages = {
            "invalid_input": N_("I could not use that: {detail}"),
            "not_allowed": N_("That is not available on your plan or on this server."),
            "job_not_found": N_("I cannot find that job."),
            "provider_unavailable": N_(
                "A data service is not available right now. Please try again in a minute."
            ),
        }
        template = messages.get(error.code, N_("Sorry, I could not do that: {detail}"))
        return t(template, detail=error.public_message)


def _larger(size: int | None, limit: int) -> bool:
    """Whether a file of `size` bytes (None: not told) is known to be over `limit`."""
    return size is not None and size > limit


def _message(update: Update) -> Message:
    message = update.effective_message
    if message is None:
        raise ValueError("a message handler got an update without a message")
    return message


def _follow_ups(t: Translator, answer: Answer) -> list[tuple[str, str]]:
    """The Specs / Recalls / Compare buttons after a successful single-VIN decode."""
    decoded = [c for c in answer.tool_calls if c.name == "decode_vin" and c.ok]
    if not decoded:
        return []
    try:
        vin = Vin.parse(str(decoded[-1].args.get("vin", ""))).value
    except InvalidVin:
        return []
    return [
        (t("Specs"), f"fu:sp:{vin}"),
        (t("Recalls"), f"fu:rc:{vin}"),
        (t("Compare with…"), f"fu:cw:{vin}"),
    ]


def _attachments(answer: Answer) -> list[tuple[bytes, str]]:
    """The answer's images (comparison charts) as (bytes, caption), for `sendPhoto`."""
    return [
        (base64.b64decode(a.data_base64), a.title or "")
        for a in answer.attachments
        if a.media_type.startswith("image/")
    ]


@asynccontextmanager
async def typing(
    bot: Bot, chat_id: int, *, after_s: float = 0.0, every_s: float = TYPING_EVERY_S
) -> AsyncIterator[None]:
    """Show "typing…" in the chat while the block runs longer than `after_s`, again every `every_s`.

    Telegram recommends the action only when the answer takes a noticeable time: an answer
    that comes within `after_s` (most of them) costs no `sendChatAction` at all, only a
    timer, and no task outlives the block. The action lasts about 5 s, hence the refresh.
    A request still in flight when the block ends is awaited, not cancelled, so the action
    never lands after the answer and the HTTP connection is not torn down.
    """
    loop = asyncio.get_running_loop()
    sending: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None

    async def send() -> None:
        try:
            await bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as e:  # the typing hint is cosmetic: never fail the answer for it
            logger.debug("typing action failed: %s", type(e).__name__)

    def refresh() -> None:
        nonlocal sending, timer
        if sending is None or sending.done():
            sending = loop.create_task(send())
        timer = loop.call_later(every_s, refresh)

    if after_s > 0:
        timer = loop.call_later(after_s, refresh)
    else:
        refresh()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        if sending is not None:
            await asyncio.shield(sending)
