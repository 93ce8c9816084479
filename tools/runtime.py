"""Process-wide tuning every vinbot process applies at start (`vinbot.cli.configure_process`)."""

from __future__ import annotations

import gc

# CPython collects its youngest generation after 700 net allocations of container
# objects. Building a thousand decodes (or a page of rows) allocates tens of thousands
# that all survive until the batch is returned, so at 700 the collector walks each of
# them once or twice for nothing: a fifth of the instructions `tools.vin.decode_many`
# executed (bench/README.md, decode_bench). At 10,000 most of them are freed by
# reference counting before a collection comes round; cycles are still collected.
GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Collect young garbage less often, and never walk the objects that exist at start-up again.

    Idempotent. Objects alive now (modules, classes, the vPIC tables' Python side) move
    to the permanent generation (`gc.freeze`): later full collections skip them.
    """
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GEN0_THRESHOLD), gen1, gen2)
    gc.freeze()
