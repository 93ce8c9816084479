"""The bot's HTTP client (`bot.request.StreamRequest`, `AnswerBot`) over real loopback sockets.

Against the Telegram stand-in (the Bot API's wire format) and against small asyncio
servers that answer in the ways a server may: chunked bodies, `Connection: close`, a
keep-alive connection closed while idle, no answer at all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from standins.telegram_api import TelegramStandIn
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.request import RequestData

from bot.request import AnswerBot, StreamRequest, Timeouts

pytestmark = pytest.mark.e2e

TOKEN = "4747474747:AAH-standin-token-request-tests-01234567"
_chats = itertools.count(7_100_000)

Respond = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def answering(respond: Respond) -> AsyncIterator[tuple[str, list[int]]]:
    """Serve `respond` on a loopback port; yield its URL and a list counting connections."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await respond(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bot{TOKEN}/getMe", connections
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one request (headers and a Content-Length body); b"" at the connection's end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


OK = json.dumps({"ok": True, "result": {"id": 1}}).encode()


async def test_a_message_goes_as_json_and_its_keyboard_arrives(telegram: tuple[TelegramStandIn, str]) -> None:
    standin, url = telegram
    chat = next(_chats)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Specs", callback_data="fu:sp:1")]])
    async with AnswerBot(TOKEN, base_url=f"{url}/bot", request=StreamRequest()) as bot:
        await bot.send_html(
            chat, "<b>Civic</b> &amp; more", buttons=[[("👍", "fb:+:1"), ("👎", "fb:-:1")], []]
        )
        await bot.send_html(chat, "no buttons")
        sent = await bot.send_message(chat, "PTB's own", reply_markup=markup)
    calls = standin.bot(TOKEN).calls_of("sendMessage", chat)
    assert calls[0].params["text"] == "<b>Civic</b> &amp; more"
    assert calls[0].params["parse_mode"] == "HTML"
    assert calls[0].params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "👍", "callback_data": "fb:+:1"}, {"text": "👎", "callback_data": "fb:-:1"}]
        ]
    }
    assert "reply_markup" not in calls[1].params
    assert calls[2].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Specs", "callback_data": "fu:sp:1"}]]
    }
    assert sent.text == "PTB's own"


async def test_a_bot_api_error_raises_as_ptb_maps_it(telegram: tuple[TelegramStandIn, str]) -> None:
    _, url = telegram
    async with AnswerBot(TOKEN, base_url=f"{url}/bot", request=StreamRequest()) as bot:
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_html(next(_chats), "<b>unclosed")


async def test_a_file_is_uploaded_as_multipart_form_data(telegram: tuple[TelegramStandIn, str]) -> None:
    standin, url = telegram
    chat = next(_chats)
    async with AnswerBot(TOKEN, base_url=f"{url}/bot", request=StreamRequest()) as bot:
        await bot.send_document(chat, b"VIN\n1HGCM82633A004352\n", filename='a "b".csv', caption="Results")
    params = standin.bot(TOKEN).calls_of("sendDocument", chat)[0].params
    assert params["document"] == b"VIN\n1HGCM82633A004352\n"
    assert params["caption"] == "Results"
    assert params["_filename:document"] == "a %22b%22.csv"


async def test_keep_alive_connections_are_reused() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK))

    async with answering(respond) as (url, connections), StreamRequest() as request:
        for _ in range(3):
            assert await request.post(url, RequestData()) == {"id": 1}
    assert connections == [1]


async def test_a_chunked_body_is_read_whole() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        half = len(OK) // 2
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (OK[:half], OK[half:]):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async with answering(respond) as (url, _), StreamRequest() as request:
        assert await request.post(url, RequestData()) == {"id": 1}


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK))

    async with answering(respond) as (url, connections), StreamRequest() as request:
        assert await request.post(url, RequestData()) == {"id": 1}
        assert await request.post(url, RequestData()) == {"id": 1}
    assert connections == [1, 1]


async def test_an_idle_connection_closed_by_the_server_is_replaced() -> None:
    closed = asyncio.Event()

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK))
        await writer.drain()
        if not closed.is_set():  # the first connection: closed while idle, as keep-alive expires
            closed.set()
            return
        await read_request(reader)

    async with answering(respond) as (url, connections), StreamRequest() as request:
        assert await request.post(url, RequestData()) == {"id": 1}
        await closed.wait()
        await asyncio.sleep(0.05)  # the FIN reaches the client
        assert await request.post(url, RequestData()) == {"id": 1}
    assert connections == [1, 1]


async def test_a_server_that_never_answers_times_out() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up

    async with answering(respond) as (url, _):
        request = StreamRequest(timeouts=Timeouts(read=0.05))
        with pytest.raises(TimedOut):
            await request.post(url, RequestData())


async def test_a_full_pool_times_out_without_sending() -> None:
    started = asyncio.Event()

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        started.set()
        await reader.read()

    async with answering(respond) as (url, connections):
        request = StreamRequest(pool_size=1, timeouts=Timeouts(read=None, pool=0.05))
        first = asyncio.create_task(request.post(url, RequestData()))
        await started.wait()
        with pytest.raises(TimedOut, match="Pool timeout"):
            await request.post(url, RequestData())
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    assert connections == [1]


async def test_a_connection_that_ends_mid_response_is_a_network_error() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    async with answering(respond) as (url, _):
        with pytest.raises(NetworkError, match="closed the connection"):
            await StreamRequest().post(url, RequestData())


async def test_a_refused_connection_is_a_network_error() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with answering(respond) as (url, _):
        pass  # the server is closed: its port refuses connections
    with pytest.raises(NetworkError):
        await StreamRequest().post(url, RequestData())
