"""Seeds on the ground floor: every random stream derives from (run seed, what, which).

Data generation, prompt order, rollout noise and shard noise all call `derive_seed`, so a
result depends only on these parts, never on batching, process count or job order.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from its parts (run seed, step, shard, ...); no Python hash(),
    which is salted per process."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
