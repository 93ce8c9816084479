"""A stand-in for the Telegram Bot API, in its real wire format.

* ``POST|GET /bot<token>/<method>``: form-encoded or multipart parameters (nested objects
  such as ``reply_markup`` as JSON strings, as python-telegram-bot sends them); every reply
  is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ..., "description": ...}``.
* ``GET /file/bot<token>/<file_path>``: file downloads, after ``getFile``.

Methods: ``getMe``, ``getUpdates`` (long polling with ``offset``/``timeout``/``limit``),
``deleteWebhook``, ``setWebhook``, ``setMyCommands``, ``sendMessage``, ``sendChatAction``,
``editMessageText``, ``editMessageReplyMarkup``, ``answerCallbackQuery``, ``sendPhoto``,
``sendDocument``, ``getFile``. Like Telegram, ``parse_mode=HTML`` text is parsed: unknown or
unclosed tags are a 400 "can't parse entities", text longer than 4,096 characters after
parsing is a 400 "message is too long", and an edit to the same text is a 400 "message is
not modified". An uploaded photo must be an image (else a 400 "IMAGE_PROCESS_FAILED"), and
its size is the image's; an uploaded document's MIME type is guessed from its file name.

Each bot token has its own `BotState`: tests push updates (`push_text`, `push_command`,
`push_callback`, `push_photo`, `push_document`), read what the bot sent (`calls`,
`sent_messages`) and wait for it (`wait_for`); `fail` makes a method answer with an error.

Webhooks (`TelegramStandIn(deliver_webhooks=True)`): after ``setWebhook`` the pending updates
are POSTed to its ``url`` as JSON, with ``X-Telegram-Bot-Api-Secret-Token`` when a
``secret_token`` was given, as the Bot API server (tdlib/telegram-bot-api's WebhookActor)
sends them: up to ``max_connections`` (default 40) requests at once, but a chat's next
update only after the webhook answered its previous one with a 2xx; an update that got
anything else (or no answer) is sent again after a pause, still ahead of its chat's later
updates. ``getUpdates`` is a 409 Conflict while a webhook is set, as on Telegram.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import html
import io
import itertools
import json
import mimetypes
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "link_preview_options",
        "scope",
    }
)
_ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
    }
)


class EntityError(ValueError):
    """Text Telegram would refuse to parse."""


class ConflictError(RuntimeError):
    """A method Telegram refuses in the bot's current state (409)."""


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            raise EntityError(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise EntityError(f'Unmatched end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> str:
    """Return the plain text of Telegram HTML, or raise `EntityError` as Telegram would."""
    if "<" in text.replace("&lt;", ""):
        parser = _TelegramHtml()
        parser.feed(text)
        parser.close()
        if parser.open:
            raise EntityError(f'Can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
        return "".join(parser.text)
    if "&" in text:
        for piece in text.split("&")[1:]:
            if ";" not in piece[:10]:
                raise EntityError("Unclosed entity")
    return html.unescape(text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass
class Fault:
    code: int
    description: str
    times: int | None  # None: until cleared


@dataclass
class BotState:
    """One bot token's world: its updates, chats, files, and what the bot did."""

    token: str
    bot_id: int
    username: str = "vinbot_test_bot"
    updates: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)  # chat -> id -> message
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id -> (path, bytes)
    uploads: dict[int, bytes] = field(default_factory=dict)  # message id -> uploaded photo/document bytes
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # language_code or "" -> commands
    webhook: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _file_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    deliver_webhooks: bool = False
    webhook_deliveries: int = 0  # POSTs to the webhook, redeliveries included
    webhook_acknowledged: int = 0  # updates the webhook answered with a 2xx (then never sent again)
    _webhook_task: asyncio.Task[None] | None = None
    _webhook_wake: asyncio.Event = field(default_factory=asyncio.Event)

    # ---------------------------------------------------------------- what tests push

    @property
    def me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "vinbot",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self.updates.append(update)
        self._new_update.set()
        self._webhook_wake.set()
        return update

    def _user_message(
        self, user: dict[str, Any], chat_id: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        chat_id = user["id"] if chat_id is None else chat_id
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": user.get("first_name", "")},
            "from": user,
            **fields,
        }
        self.messages.setdefault(chat_id, {})[message["message_id"]] = message
        return message

    def push_text(
        self, user: dict[str, Any], text: str, *, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Queue a text message from `user` in their private chat; return the update."""
        fields: dict[str, Any] = {"text": text}
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        return self._push({"message": self._user_message(user, **fields)})

    def push_command(self, user: dict[str, Any], command: str, *args: str) -> dict[str, Any]:
        """Queue `/command args...` with its `bot_command` entity."""
        text = " ".join([f"/{command}", *args])
        entity = {"type": "bot_command", "offset": 0, "length": len(command) + 1}
        return self._push({"message": self._user_message(user, text=text, entities=[entity])})

    def push_callback(self, user: dict[str, Any], message: dict[str, Any], data: str) -> dict[str, Any]:
        """Queue a press on the inline button with `data` under the bot's `message`."""
        query = {
            "id": str(next(self._update_ids) * 1000 + 7),
            "from": user,
            "message": message,
            "chat_instance": f"ci-{message['chat']['id']}",
            "data": data,
        }
        return self._push({"callback_query": query})

    def add_file(self, data: bytes, name: str) -> dict[str, Any]:
        n = next(self._file_ids)
        file_id = f"file-{self.bot_id}-{n}"
        self.files[file_id] = (f"documents/{n}-{name}", data)
        return {"file_id": file_id, "file_unique_id": f"u{n}", "file_size": len(data)}

    def push_photo(self, user: dict[str, Any], image: bytes, *, caption: str | None = None) -> dict[str, Any]:
        """Queue a photo (one size, as a small photo arrives) from `user`."""
        info = self.add_file(image, "photo.jpg")
        photo = [{**info, "width": 1280, "height": 320}]
        fields: dict[str, Any] = {"photo": photo}
        if caption:
            fields["caption"] = caption
        return self._push({"message": self._user_message(user, **fields)})

    def push_document(self, user: dict[str, Any], data: bytes, name: str, mime_type: str) -> dict[str, Any]:
        """Queue a file (a document) from `user`."""
        document = {**self.add_file(data, name), "file_name": name, "mime_type": mime_type}
        return self._push({"message": self._user_message(user, document=document)})

    def fail(self, method: str, description: str, *, code: int = 400, times: int | None = 1) -> None:
        """Answer the next `times` calls of `method` with a Bot API error."""
        self.faults[method] = Fault(code, description, times)

    # ---------------------------------------------------------------- what tests read

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    def sent_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in `chat_id`, oldest first, as they are now (edits applied)."""
        return [m for m in self.messages.get(chat_id, {}).values() if m["from"]["id"] == self.bot_id]

    async def wait_for(self, check: Callable[[], Any], *, within_s: float = 20.0) -> Any:
        """Wait until `check()` returns something truthy; return it."""
        async with asyncio.timeout(within_s):
            while True:
                if result := check():
                    return result
                event = self._changed
                await event.wait()

    def _record(self, method: str, params: dict[str, Any]) -> None:
        self.calls.append(Call(method, params, time.monotonic()))
        self._notify()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # ---------------------------------------------------------------- the methods

    def _bot_message(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self.me,
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.messages.setdefault(chat_id, {})[message["message_id"]] = message
        return message

    def _reply_to(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters") or {}
        message_id = reply.get("message_id") or params.get("reply_to_message_id")
        if message_id is None:
            return None
        found = self.messages.get(chat_id, {}).get(int(message_id))
        if found is None:
            raise EntityError("message to be replied not found")
        return {k: v for k, v in found.items() if k != "reply_to_message"}

    @staticmethod
    def _text(params: dict[str, Any], key: str, limit: int) -> tuple[str, str]:
        raw = str(params.get(key, ""))
        plain = parse_html(raw) if params.get("parse_mode") == "HTML" else raw
        if key == "text" and not plain.strip():
            raise EntityError("message text is empty")
        if utf16_len(plain) > limit:
            raise EntityError("message is too long" if key == "text" else "message caption is too long")
        return raw, plain

    def _inline(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None

    async def handle(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getUpdates":
            return await self._get_updates(params)
        self._record(method, params)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            raise LookupError(method)
        return handler(params)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ConflictError(
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._new_update.wait()
        return self.updates[:limit]

    def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.me

    def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {}
        self._webhook_wake.set()  # the delivery loop sees that there is no webhook and ends
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = dict(params)
        if self.deliver_webhooks and params.get("url") and self._webhook_task is None:
            self._webhook_task = asyncio.get_running_loop().create_task(self._deliver())
        self._webhook_wake.set()
        return True

    # ---------------------------------------------------------------- webhook delivery

    @staticmethod
    def _queue_of(update: dict[str, Any]) -> int:
        """The update's delivery queue: its chat (a button press: the chat of its message)."""
        if "callback_query" in update:
            query = update["callback_query"]
            message = query.get("message")
            return int(message["chat"]["id"]) if message else int(query["from"]["id"])
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if key in update:
                return int(update[key]["chat"]["id"])
        return -int(update["update_id"])  # an update without a chat is a queue of its own

    async def _deliver(self) -> None:
        """POST pending updates to the webhook as the Bot API server does, until it is deleted."""
        queues: dict[int, collections.deque[dict[str, Any]]] = {}  # chat -> its pending updates
        ready: collections.deque[int] = collections.deque()  # chats whose oldest update may be sent
        tasks: set[asyncio.Task[None]] = set()
        max_connections = int(self.webhook.get("max_connections") or 40)
        client = WebhookClient()

        async def send(queue: int, update: dict[str, Any]) -> None:
            delay = 0.05
            while url := self.webhook.get("url"):
                secret = self.webhook.get("secret_token")
                headers = {"X-Telegram-Bot-Api-Secret-Token": str(secret)} if secret else {}
                self.webhook_deliveries += 1
                with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
                    if 200 <= await client.post_json(url, update, headers) < 300:
                        break
                await asyncio.sleep(delay)  # no answer or not a 2xx: sent again, as on Telegram
                delay = min(1.0, delay * 2)
            else:
                return  # the webhook was deleted: the update stays pending
            self.webhook_acknowledged += 1
            self._notify()
            pending = queues[queue]
            pending.popleft()
            if pending:
                ready.append(queue)
            else:
                del queues[queue]
            self._webhook_wake.set()

        try:
            while self.webhook.get("url"):
                self._webhook_wake.clear()
                taken, self.updates = self.updates, []
                for update in taken:
                    queue = self._queue_of(update)
                    if queue not in queues:
                        queues[queue] = collections.deque()
                        ready.append(queue)
                    queues[queue].append(update)
                while ready and len(tasks) < max_connections:
                    queue = ready.popleft()
                    task = asyncio.create_task(send(queue, queues[queue][0]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await self._webhook_wake.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            client.close()
            # What was not delivered is pending again, oldest first.
            left = [u for pending in queues.values() for u in pending]
            self.updates = sorted(left + self.updates, key=lambda u: int(u["update_id"]))
            self._webhook_task = None

    async def stop_webhook_delivery(self) -> None:
        """Stop POSTing updates (the webhook stays set); wait for the requests in flight to end."""
        task = self._webhook_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands[str(params.get("language_code") or "")] = list(params.get("commands") or [])
        return True

    def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        raw, plain = self._text(params, "text", MESSAGE_LIMIT)
        return self._bot_message(
            chat_id,
            text=plain,
            html=raw,
            reply_markup=self._inline(params),
            reply_to_message=self._reply_to(chat_id, params),
        )

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        found = self.messages.get(chat_id, {}).get(message_id)
        if found is None:
            raise EntityError("message to edit not found")
        return found

    def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        raw, plain = self._text(params, "text", MESSAGE_LIMIT)
        if plain == message.get("text") and self._inline(params) == message.get("reply_markup"):
            raise EntityError(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        message.update(text=plain, html=raw, edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if (markup := self._inline(params)) is not None:
            message["reply_markup"] = markup
        return message

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._find(params)
        markup = self._inline(params)
        if markup is None or not markup["inline_keyboard"]:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return message

    def _upload(self, params: dict[str, Any], key: str) -> bytes:
        value = params.get(key)
        if isinstance(value, bytes):
            return value
        if isinstance(value, str) and value in self.files:
            return self.files[value][1]
        raise EntityError(f"wrong {key} identifier or no file uploaded")

    def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        data = self._upload(params, "photo")
        raw, plain = self._text(params, "caption", CAPTION_LIMIT)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError) as e:
            raise EntityError("IMAGE_PROCESS_FAILED") from e
        info = self.add_file(data, "photo.png")
        message = self._bot_message(
            chat_id,
            photo=[{**info, "width": width, "height": height}],
            caption=plain or None,
            html=raw or None,
        )
        self.uploads[message["message_id"]] = data
        return message

    def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        data = self._upload(params, "document")
        _raw, plain = self._text(params, "caption", CAPTION_LIMIT)
        name = str(params.get("_filename:document") or "document")
        mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        document = {**self.add_file(data, name), "file_name": name, "mime_type": mime_type}
        message = self._bot_message(
            chat_id,
            document=document,
            caption=plain or None,
            reply_to_message=self._reply_to(chat_id, params),
        )
        self.uploads[message["message_id"]] = data
        return message

    def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            raise EntityError("invalid file_id")
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data), "file_path": path}


class WebhookClient:
    """POST JSON over kept-alive HTTP/1.1 connections to `http://` webhooks, at little CPU cost.

    The Bot API server is C++ and runs elsewhere; the stand-in runs on the bot's own machine
    in tests and benches, so its deliveries use plain asyncio streams (no httpx/httpcore
    machinery per request). A connection is used by one request at a time.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    async def post_json(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        """POST `body` to `url`; return the response's status code (its body is read and dropped)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the stand-in delivers only to http:// webhooks, not {url!r}")
        key = (parts.hostname, parts.port or 80)
        idle = self._idle.setdefault(key, [])
        reader, writer = idle.pop() if idle else await asyncio.open_connection(*key)
        data = json.dumps(body).encode()
        head = [
            f"POST {parts.path or '/'} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Content-Type: application/json",
        ]
        head += [f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        try:
            writer.write("\r\n".join(head).encode() + data)
            status, keep_alive = await self._read_response(reader)
        except BaseException:
            writer.close()
            raise
        if keep_alive:
            idle.append((reader, writer))
        else:
            writer.close()
        return status

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        if fields.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")
        else:
            await reader.readexactly(int(fields.get("content-length", "0")))
        return status, fields.get("connection", "").lower() != "close"

    def close(self) -> None:
        """Close the idle connections."""
        for connections in self._idle.values():
            for _reader, writer in connections:
                writer.close()
        self._idle.clear()


@dataclass
class TelegramStandIn:
    """Every bot token's state; make one per test module."""

    bots: dict[str, BotState] = field(default_factory=dict)
    requests: int = 0
    deliver_webhooks: bool = False  # POST updates to a webhook set with setWebhook

    def bot(self, token: str) -> BotState:
        """Return the state of `token` (created on first use; the bot id is the token's prefix)."""
        if token not in self.bots:
            self.bots[token] = BotState(
                token=token, bot_id=int(token.split(":", 1)[0]), deliver_webhooks=self.deliver_webhooks
            )
        return self.bots[token]

    async def aclose(self) -> None:
        """Stop every webhook delivery."""
        for state in self.bots.values():
            await state.stop_webhook_delivery()


def user(
    user_id: int, language_code: str = "en", *, first_name: str = "Ana", username: str | None = None
) -> dict[str, Any]:
    """A Telegram `User` object for a person."""
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "username": username or f"user{user_id}",
        "language_code": language_code,
    }


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form() as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params[key] = await value.read()
                    params[f"_filename:{key}"] = value.filename
                else:
                    params[key] = value
    elif content_type.startswith("application/json"):
        params.update(json.loads(await request.body() or b"{}"))
    else:
        params.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    for key in _JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    # Multipart uploads name their parts `attach://<name>` only for media groups; PTB sends
    # InputFile bytes under the parameter name itself.
    return params


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error_code": code, "description": description}, status_code=code)


def create_app(standin: TelegramStandIn) -> Starlette:
    """The stand-in's ASGI app."""

    async def method(request: Request) -> Response:
        standin.requests += 1
        token, name = request.path_params["token"], request.path_params["method"]
        if ":" not in token:
            return _error(401, "Unauthorized")
        state = standin.bot(token)
        try:
            params = await _params(request)
        except ClientDisconnect:  # the client gave up (a timeout, or a bot stopping mid-request)
            return Response(status_code=499)
        fault = state.faults.get(name)
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del state.faults[name]
            state._record(name, params)
            return _error(
                fault.code, f"Bad Request: {fault.description}" if fault.code == 400 else fault.description
            )
        try:
            result = await state.handle(name, params)
        except EntityError as e:
            text = str(e)
            prefix = (
                "Bad Request: can't parse entities: "
                if "tag" in text or "entity" in text.lower()
                else "Bad Request: "
            )
            return _error(400, prefix + text)
        except ConflictError as e:
            return _error(409, str(e))
        except LookupError:
            return _error(404, "Not Found")
        return JSONResponse({"ok": True, "result": result})

    async def download(request: Request) -> Response:
        state = standin.bot(request.path_params["token"])
        path = request.path_params["path"]
        for stored_path, data in state.files.values():
            if stored_path == path:
                return Response(data, media_type="application/octet-stream")
        return Response(status_code=404)

    return Starlette(
        routes=[
            Route("/bot{token}/{method}", method, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", download, methods=["GET"]),
        ]
    )


def button_data(message: dict[str, Any]) -> list[str]:
    """The callback data of every inline button under `message`."""
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


def texts(messages: Iterable[dict[str, Any]]) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in messages]
