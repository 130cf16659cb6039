"""Seeded randomness addressed by position, so a take is reproducible and streaming draws the same
numbers as offline decoding: the value at frame (or sample) i depends only on (seed, stream, i), never on
how the range was split into chunks.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# one independent stream per kind of draw
ODE_START = 1
HARMONIC_PHASES = 2
SINE_NOISE = 3


class PositionalNoise:
    """Standard normal values [rows, positions], drawn in fixed blocks of positions, each block from its
    own generator keyed by (seed, stream, block index)."""

    def __init__(self, seed: int, stream: int, rows: int, block: int = 4096):
        self.seed = int(seed)
        self.stream = int(stream)
        self.rows = int(rows)
        self.block = int(block)
        self._cache: dict[int, np.ndarray] = {}

    def _block(self, index: int) -> np.ndarray:
        values = self._cache.get(index)
        if values is None:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.stream, index])
            values = rng.standard_normal((self.block, self.rows), dtype=np.float32).T.copy()
            if len(self._cache) >= 8:  # streaming moves forward: the oldest block is not needed again
                self._cache.pop(min(self._cache))
            self._cache[index] = values
        return values

    def take(self, start: int, stop: int) -> torch.Tensor:
        """Values for positions [start, stop) as float32 [rows, stop - start]."""
        if stop <= start:
            return torch.zeros(self.rows, 0)
        first, last = start // self.block, (stop - 1) // self.block
        parts = np.concatenate([self._block(b) for b in range(first, last + 1)], axis=1)
        offset = start - first * self.block
        return torch.from_numpy(np.ascontiguousarray(parts[:, offset:offset + stop - start]))


def harmonic_phases(seed: int, harmonics: int) -> torch.Tensor:
    """One starting phase per harmonic, Uniform(-pi, pi), the fundamental's 0: [1, H+1, 1]."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, HARMONIC_PHASES])
    phases = rng.uniform(-math.pi, math.pi, size=harmonics + 1).astype(np.float32)
    phases[0] = 0.0
    return torch.from_numpy(phases).view(1, -1, 1)
