"""The embedded Redis is shared by processes and stops when the last one detaches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis

from tools.embedded import EmbeddedRedis

pytestmark = pytest.mark.integration

ATTACH = """
import sys, time
from pathlib import Path
from tools.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
print(server.start(), flush=True)
time.sleep(60)
"""


def ping(url: str) -> bool:
    client = redis.Redis(unix_socket_path=url.removeprefix("unix://"), socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


def attach_in_another_process(directory: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", ATTACH, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def test_server_outlives_a_detaching_process_while_another_still_uses_it() -> None:
    directory = Path(tempfile.mkdtemp(prefix="vinbot-shared-redis-"))
    child, url = attach_in_another_process(directory)
    try:
        ours = EmbeddedRedis(directory)
        assert ours.start() == url  # the same server, not a second one
        ours.stop()
        assert ping(url)  # the other process still holds it
    finally:
        child.send_signal(signal.SIGKILL)  # dies without detaching, like a crash
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    # A later process reclaims the orphan and, detaching last, stops it.
    again = EmbeddedRedis(directory)
    assert again.start() == url
    again.stop()
    deadline = time.monotonic() + 10
    while ping(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ping(url)
