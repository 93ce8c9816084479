"""The typing action: only for answers that take a noticeable time (`bot.handlers.typing`)."""

from __future__ import annotations

import asyncio

from bot.handlers import typing


class FakeBot:
    """Records `send_chat_action` calls, the one Bot method `typing` uses."""

    def __init__(self) -> None:
        self.actions: list[tuple[int, str]] = []
        self.sent = asyncio.Event()

    async def send_chat_action(self, chat_id: int, action: str) -> bool:
        self.actions.append((chat_id, action))
        self.sent.set()
        return True


async def test_no_typing_action_is_sent_when_the_answer_comes_before_the_delay() -> None:
    bot = FakeBot()
    async with typing(bot, 7, after_s=3600):
        pass
    await asyncio.sleep(0)
    assert bot.actions == []


async def test_the_typing_action_is_sent_at_once_when_there_is_no_delay() -> None:
    bot = FakeBot()
    async with typing(bot, 7, after_s=0):
        pass
    assert bot.actions == [(7, "typing")]


async def test_the_typing_action_is_sent_when_the_answer_takes_longer_than_the_delay() -> None:
    bot = FakeBot()
    async with typing(bot, 7, after_s=0.01, every_s=3600):
        await bot.sent.wait()  # an answer still being worked on when the delay has passed
    assert bot.actions == [(7, "typing")]
