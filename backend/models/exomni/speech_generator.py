"""The speech generator: LLM hidden states + the reply's text tokens -> discrete speech units.

An MLP lifts each LLM state into 4 positions (a strided split of its 4·D outputs); TQGF fuses them
with the reply's text-token embeddings (taken from the inner decoder's own table, last token
dropped); the prompt [sos, fused..., task] starts a small Qwen3 decoder that emits units (12.5 Hz)
autoregressively with a KV cache until EOS (= unit_vocab_size). Attribute names follow the released
checkpoint (`model.speech_generator.*`); the inner decoder sits at `llm.model.model` there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, Qwen3Model

from .configuration import SpeechGeneratorConfig
from .sampling import UnitSampling
from .tqgf import TQGF

SOS_INDEX, TASK_INDEX = 0, 1  # rows of `llm_embedding`


@dataclass
class UnitDecoding:
    units: list[int]
    hidden_states: torch.Tensor  # [1, steps, D]: the state that made each step's decision
    prompt_embeds: torch.Tensor  # [1, N + 1, D]
    min_len: int
    max_len: int
    stop_reason: str  # "eos" or "max_len"
    step_choice: list[int] = field(default_factory=list)
    step_ignore_eos: list[bool] = field(default_factory=list)
    step_logprobs: torch.Tensor | None = None  # [steps, V + 3] when kept


class SpeechGenerator(nn.Module):
    def __init__(self, config: SpeechGeneratorConfig):
        super().__init__()
        self.config = config
        d, v = config.dim, config.unit_vocab_size
        # The reference wraps a Qwen3ForCausalLM in a holder; only its Qwen3Model runs.
        self.llm = nn.Module()
        self.llm.model = nn.Module()
        self.llm.model.model = Qwen3Model(config.decoder)
        self.llm_embedding = nn.Embedding(2, d)  # sos, task
        self.llm_decoder = nn.Linear(d, v + 3)
        self.speech_embedding = nn.Embedding(v + 3, d)
        lifted = d * config.states_per_token
        self.input_proj = nn.Sequential(nn.Linear(config.llm_hidden_size, lifted), nn.GELU(),
                                        nn.Linear(lifted, lifted))
        self.tqgf = TQGF(d, depth=config.tqgf_depth, dim_head=config.tqgf_dim_head, heads=config.tqgf_heads)

    @property
    def decoder(self):
        return self.llm.model.model

    # -- prompt ------------------------------------------------------------------------------
    def lift(self, llm_hidden: torch.Tensor) -> torch.Tensor:
        """[B, N, H] -> [B, 4N, D]; sub-position j of state n takes elements j, j+4, j+8, ..."""
        b, n, _ = llm_hidden.shape
        k = self.config.states_per_token
        lifted = self.input_proj(llm_hidden).view(b, n, self.config.dim, k)
        return lifted.transpose(2, 3).reshape(b, n * k, self.config.dim)

    def build_prompt(self, llm_hidden: torch.Tensor, text_ids: torch.Tensor, keep: dict | None = None):
        """[sos, TQGF(text embeddings of text_ids[:, :-1] over the lifted states), task] -> [1, N+1, D]."""
        param = self.llm_embedding.weight
        llm_hidden = llm_hidden.to(device=param.device, dtype=param.dtype)
        keys = self.lift(llm_hidden)
        text = self.decoder.embed_tokens(text_ids[:, :-1].to(param.device))
        fused = self.tqgf(keys, text)
        b = fused.shape[0]
        sos = param[SOS_INDEX].view(1, 1, -1).expand(b, 1, -1)
        task = param[TASK_INDEX].view(1, 1, -1).expand(b, 1, -1)
        prompt = torch.cat([sos, fused, task], dim=1)
        if keep is not None:
            keep.update(keys_upsampled=keys, text_embeddings=text, tqgf_out=fused, prompt_embeds=prompt)
        return prompt

    # -- teacher forcing ----------------------------------------------------------------------
    @torch.no_grad()
    def teacher_forced(self, llm_hidden: torch.Tensor, text_ids: torch.Tensor, unit_ids: torch.Tensor,
                       keep: dict | None = None):
        """One causal pass over [prompt, units]: (last hidden [1, N+1+K, D], logits [1, N+1+K, V+3])."""
        prompt = self.build_prompt(llm_hidden, text_ids, keep)
        lm_input = torch.cat([prompt, self.speech_embedding(unit_ids.to(prompt.device))], dim=1)
        hidden = self.decoder(inputs_embeds=lm_input, use_cache=False).last_hidden_state
        logits = self.llm_decoder(hidden)
        if keep is not None:
            keep.update(lm_input=lm_input)
        return hidden, logits

    # -- decoding -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, llm_hidden: torch.Tensor, text_ids: torch.Tensor, sampling: UnitSampling | None = None,
                 generator: torch.Generator | None = None, keep_logprobs: bool = False,
                 on_step: Callable[[int, int], None] | None = None,
                 on_unit: Callable[[int], None] | None = None,
                 on_units: Callable[[list, list], None] | None = None) -> UnitDecoding:
        """Decode units for one reply (batch 1).

        llm_hidden [1, N, H]: entry k is the LLM state that predicted text token k; text_ids [1, N]
        (the last one, usually EOS, is dropped). EOS is refused during the first int(2(N-1)) steps;
        at most int(20(N-1)) steps run. Ids above EOS are skipped: the next step feeds the previous
        input again while the cache grows, as the released model does. `on_step(step, max_len)` is
        called before each step (progress, cancellation); `on_units(units, states)` after it with the
        units and the step states so far (live lists: read, do not keep), e.g. to animate the face so far;
        `on_unit(unit)` as soon as a unit is kept, so
        that audio can be decoded while the rest is still being generated.
        """
        if llm_hidden.shape[0] != 1 or text_ids.shape[0] != 1:
            raise ValueError("the speech generator decodes one reply at a time (batch 1)")
        n_text = text_ids.shape[1] - 1
        if n_text < 1:
            raise ValueError("the reply has no text token before its last one, so there is nothing to speak")
        sampling = sampling or UnitSampling(greedy=True)
        cfg = self.config
        min_len, max_len = int(n_text * cfg.min_units_per_token), int(n_text * cfg.max_units_per_token)
        prompt = self.build_prompt(llm_hidden, text_ids)
        cache = DynamicCache()
        lm_input = prompt
        units: list[int] = []
        hidden, logprobs, choices, ignore = [], [], [], []
        stop = "max_len"
        for step in range(max_len):
            if on_step:
                on_step(step, max_len)
            out = self.decoder(inputs_embeds=lm_input, past_key_values=cache, use_cache=True)
            state = out.last_hidden_state[:, -1:]
            hidden.append(state)
            scores = F.log_softmax(self.llm_decoder(state[:, -1]).float(), dim=-1)[0]
            if keep_logprobs:
                logprobs.append(scores)
            allow_eos = step >= min_len
            choice = sampling.choose(scores, units, cfg.eos_id, allow_eos, generator)
            choices.append(choice)
            ignore.append(not allow_eos)
            if choice == cfg.eos_id:
                stop = "eos"
                break
            if choice > cfg.eos_id:
                continue
            units.append(choice)
            if on_unit:
                on_unit(choice)
            if on_units:
                on_units(units, hidden)
            lm_input = self.speech_embedding.weight[choice].view(1, 1, -1)
        return UnitDecoding(
            units=units, hidden_states=torch.cat(hidden, dim=1), prompt_embeds=prompt,
            min_len=min_len, max_len=max_len, stop_reason=stop, step_choice=choices, step_ignore_eos=ignore,
            step_logprobs=torch.stack(logprobs) if keep_logprobs else None,
        )
