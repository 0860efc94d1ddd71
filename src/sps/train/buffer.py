"""The IRL demonstration buffer (`irl.demos: buffer`): per prompt, the distinct correct
completions seen at earlier steps, bounded, oldest dropped first."""

from __future__ import annotations


class DemoBuffer:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"irl.buffer_size must be >= 1, got {size}")
        self.size = size
        self.store: dict[int, list[tuple[int, ...]]] = {}

    def add(self, prompt: int, tokens: list[int]) -> None:
        """Remember `tokens` for `prompt`; a duplicate moves to the newest position."""
        seqs = self.store.setdefault(prompt, [])
        key = tuple(tokens)
        if key in seqs:
            seqs.remove(key)
        seqs.append(key)
        del seqs[: max(0, len(seqs) - self.size)]

    def get(self, prompt: int) -> list[list[int]]:
        return [list(s) for s in self.store.get(prompt, [])]

    def state_dict(self) -> dict:
        return {
            "size": self.size,
            "store": {str(p): [list(s) for s in v] for p, v in self.store.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.store = {int(p): [tuple(s) for s in v] for p, v in state["store"].items()}
