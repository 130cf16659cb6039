"""Choosing the next token: greedy, the text sampler, and repetition-aware unit sampling.

Every random draw goes through an explicit CPU `torch.Generator`, so one seed reproduces a take on
any device. Scores are moved to the CPU in float32 for the draw (one small vector per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    return int(torch.multinomial(probs, 1, generator=generator).item())


@dataclass
class TextSampling:
    """The LLM's sampler, in the order transformers applies it: repetition penalty, temperature, top-k, top-p.

    The released demo passes only temperature (0.2); top-k, top-p, the repetition penalty and the stop
    tokens come from the checkpoint's generation_config.json (see `from_generation_config`).
    """

    greedy: bool = False
    temperature: float = 0.2  # the released demo's default
    top_k: int = 50  # transformers' default, when generation_config.json sets none
    top_p: float = 1.0
    repetition_penalty: float = 1.0  # >1 discourages tokens already generated (1 = off)

    def __post_init__(self):
        if self.temperature <= 0:
            self.greedy = True
        if not self.greedy:
            if not 0.0 < self.top_p <= 1.0:
                raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
            if self.top_k < 0:
                raise ValueError(f"top_k must be 0 (off) or positive, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be above 0, got {self.repetition_penalty}")

    @classmethod
    def from_generation_config(cls, generation: dict | None, **overrides) -> "TextSampling":
        """The demo's sampler: temperature 0.2, the rest from generation_config.json, then `overrides`."""
        generation = generation or {}
        fields = {}
        for key, kind in (("top_k", int), ("top_p", float), ("repetition_penalty", float)):
            if generation.get(key) is not None:
                fields[key] = kind(generation[key])
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**fields)

    def penalise(self, logits: torch.Tensor, previous) -> torch.Tensor:
        """transformers' repetition penalty over the tokens generated so far (the reply only: the
        reference generates from embeddings, so its input ids hold only new tokens)."""
        if self.repetition_penalty == 1.0 or not previous:
            return logits
        ids = torch.tensor(sorted(set(int(i) for i in previous)), device=logits.device)
        picked = logits[ids]
        logits = logits.clone()
        logits[ids] = torch.where(picked < 0, picked * self.repetition_penalty, picked / self.repetition_penalty)
        return logits

    def choose(self, logits: torch.Tensor, generator: torch.Generator | None = None, previous=()) -> int:
        """logits: [vocab] for the next position; previous: the reply's tokens so far."""
        logits = self.penalise(logits, previous)
        if self.greedy:
            return int(torch.argmax(logits).item())
        scores = logits.detach().float().cpu() / self.temperature
        if 0 < self.top_k < scores.numel():
            kth = torch.topk(scores, self.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ascending, order = torch.sort(scores, descending=False)
            cumulative = ascending.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1.0 - self.top_p)
            drop[-1] = False  # keep at least the most likely token
            scores = scores.masked_fill(drop.scatter(0, order, drop), float("-inf"))
        return _draw(scores.softmax(dim=-1), generator)


@dataclass
class UnitSampling:
    """Speech-unit choice as the released speech generator makes it.

    Repetition-aware sampling (VALL-E 2): nucleus sampling over the top-k most likely units while
    their cumulative probability is below top_p; if the drawn unit already occurs `tau_r x window`
    times or more among the last `window` units, draw again from the full distribution. While EOS is
    not yet allowed, a draw of EOS is repeated. `greedy` takes the argmax with EOS excluded instead.
    """

    greedy: bool = False
    top_p: float = 0.8
    top_k: int = 25
    window: int = 10
    tau_r: float = 0.1
    max_redraws: int = 100  # the reference redraws without bound; past this, EOS is masked out

    def choose(self, logprobs: torch.Tensor, decoded: list[int], eos_id: int, allow_eos: bool,
               generator: torch.Generator | None = None) -> int:
        """logprobs: [V + 3] log-softmax scores of the newest position."""
        if self.greedy:
            scores = logprobs
            if not allow_eos:
                scores = logprobs.clone()
                scores[eos_id] = float("-inf")
            return int(torch.argmax(scores).item())
        probs = logprobs.detach().float().cpu().softmax(dim=-1)
        for _ in range(self.max_redraws):
            choice = self._repetition_aware(probs, decoded, generator)
            if allow_eos or choice != eos_id:
                return choice
        probs = probs.clone()
        probs[eos_id] = 0.0
        return _draw(probs, generator)

    def _repetition_aware(self, probs: torch.Tensor, decoded: list[int], generator) -> int:
        choice = self._nucleus(probs, generator)
        recent = decoded[-self.window:]
        if sum(1 for u in recent if u == choice) >= self.window * self.tau_r:
            choice = _draw(probs, generator)
        return choice

    def _nucleus(self, probs: torch.Tensor, generator) -> int:
        ranked, order = probs.sort(descending=True, stable=True)
        before = ranked.cumsum(dim=0) - ranked  # probability mass above each candidate
        keep = (before < self.top_p) & (torch.arange(ranked.numel()) < self.top_k)
        keep[0] = True
        return int(order[keep][_draw(ranked[keep], generator)].item())
