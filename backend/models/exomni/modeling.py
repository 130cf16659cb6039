"""The Ex-Omni causal LM: a Qwen3 LLM that hears speech and answers with text, speech units and faces.

`model.*` is a transformers Qwen3Model that also carries the four speech parts, as in the released
checkpoint (`model.speech_encoder`, `model.speech_projector`, `model.speech_generator`,
`model.blendshape_generator`); `lm_head` maps its states to the text vocabulary.

Two ways to run it, both ending in units and 30 fps blendshapes:
- `say`: a given reply is teacher-forced after the prompt in one pass; the state that predicted each
  reply token drives the speech generator.
- `chat`: the reply is generated (KV cache, greedy or sampled); the same states are collected on the
  way. Spoken prompts enter as Whisper features spliced in at the <speech> placeholder (id -300).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn
from transformers import DynamicCache, Qwen3Model

from .blendshape_generator import BlendshapeGenerator, frame_count
from .configuration import SPEECH_PLACEHOLDER_ID, ExomniConfig
from .sampling import TextSampling, UnitSampling
from .speech_encoder import SpeechEncoder, SpeechProjector
from .speech_generator import SpeechGenerator, UnitDecoding

StepCallback = Callable[[str, int, int], None]  # (stage, step, max_steps): progress and cancellation
UnitCallback = Callable[[int], None]  # each speech unit as soon as it is kept (streaming audio)


class ExomniBackbone(Qwen3Model):
    """The Qwen3 LLM plus the speech and face parts, under the released names (`model.*`)."""

    def __init__(self, config: ExomniConfig):
        super().__init__(config.text)
        self.speech_encoder = SpeechEncoder(config.speech_encoder)
        self.speech_projector = SpeechProjector(config.speech_encoder)
        self.speech_generator = SpeechGenerator(config.speech_generator)
        self.blendshape_generator = BlendshapeGenerator(config.blendshape_generator)


@dataclass
class ReplyGeneration:
    token_ids: list[int]  # new tokens only, EOS included when it was produced
    hidden: torch.Tensor  # [1, N, H]: entry k is the state that predicted token k
    stop_reason: str  # "eos" or "max_new_tokens"
    step_logits: torch.Tensor | None = None  # [N, vocab] when kept
    prompt_hidden: torch.Tensor | None = None  # [1, P, H] when kept
    prompt_logits: torch.Tensor | None = None  # [1, P, vocab] when kept


@dataclass
class ExomniOutput:
    text_ids: list[int]  # the reply's tokens (the spoken line in say, the answer in chat)
    units: list[int]
    blendshapes: torch.Tensor  # [T, 52] at 30 fps, raw (not clipped); T = 0 without units above 0
    unit_decoding: UnitDecoding | None = None
    reply: ReplyGeneration | None = None
    timings: dict = field(default_factory=dict)  # stage -> seconds


class ExomniForCausalLM(nn.Module):
    def __init__(self, config: ExomniConfig):
        super().__init__()
        self.config = config
        self.model = ExomniBackbone(config)
        self.lm_head = nn.Linear(config.text.hidden_size, config.text.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self):
        if getattr(self.config.text, "tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    # -- inputs ------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_speech(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> list[torch.Tensor]:
        """Log-mel [B, n_mels, 2·max_source_positions] and valid frames [B] -> B tensors [F_b, H]."""
        frames = self.model.speech_encoder(mel)
        projected = self.model.speech_projector(frames.to(self.model.speech_projector.linear1.weight.dtype))
        lengths = SpeechEncoder.output_lengths(mel_lengths.to(projected.device)) // self.model.speech_projector.k
        return [projected[b, : int(lengths[b])] for b in range(projected.shape[0])]

    def embed_prompt(self, input_ids: torch.Tensor, speech_features: Iterable[torch.Tensor] = ()) -> torch.Tensor:
        """[1, L] ids where each -300 is replaced by the next speech feature block -> [1, L', H]."""
        if input_ids.dim() != 2 or input_ids.shape[0] != 1:
            raise ValueError(f"prompts are embedded one at a time ([1, L] ids), got {list(input_ids.shape)}")
        ids = input_ids[0].to(self.device)
        features = list(speech_features)
        marks = (ids == SPEECH_PLACEHOLDER_ID).nonzero().flatten().tolist()
        if len(marks) != len(features):
            raise ValueError(f"the prompt has {len(marks)} <speech> placeholder(s) but {len(features)} speech "
                             f"input(s) were given; give one recording per <speech>")
        pieces, start = [], 0
        for mark, feats in zip(marks, features):
            pieces.append(self.model.embed_tokens(ids[start:mark]))
            pieces.append(feats.to(device=self.device, dtype=self.dtype))
            start = mark + 1
        pieces.append(self.model.embed_tokens(ids[start:]))
        return torch.cat(pieces, dim=0).unsqueeze(0)

    # -- text ----------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_reply(self, prompt_embeds: torch.Tensor, max_new_tokens: int, eos_ids: Iterable[int],
                       sampling: TextSampling | None = None, generator: torch.Generator | None = None,
                       keep: bool = False, on_step: StepCallback | None = None) -> ReplyGeneration:
        """Generate the reply with a KV cache; collect the state that predicted each new token."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        sampling = sampling or TextSampling(greedy=True)
        eos = set(int(e) for e in eos_ids)
        cache = DynamicCache()
        step_input = prompt_embeds
        tokens, states, logits_kept = [], [], []
        out = ReplyGeneration([], prompt_embeds.new_zeros(1, 0, prompt_embeds.shape[-1]), "max_new_tokens")
        for step in range(max_new_tokens):
            if on_step:
                on_step("text", step, max_new_tokens)
            hidden = self.model(inputs_embeds=step_input, past_key_values=cache, use_cache=True).last_hidden_state
            if keep and step == 0:
                out.prompt_hidden, out.prompt_logits = hidden, self.lm_head(hidden)
            state = hidden[:, -1:]
            logits = self.lm_head(state[:, -1])[0]
            states.append(state)
            if keep:
                logits_kept.append(logits)
            token = sampling.choose(logits, generator, tokens)
            tokens.append(token)
            if token in eos:
                out.stop_reason = "eos"
                break
            step_input = self.model.embed_tokens(torch.tensor([[token]], device=self.device))
        out.token_ids = tokens
        out.hidden = torch.cat(states, dim=1)
        if keep:
            out.step_logits = torch.stack(logits_kept)
        return out

    @torch.no_grad()
    def teacher_force_reply(self, prompt_embeds: torch.Tensor, reply_ids: torch.Tensor) -> torch.Tensor:
        """One causal pass over [prompt, reply[:-1]]: the states that predicted each reply token, [1, N, H]."""
        reply_ids = reply_ids.to(self.device)
        embeds = torch.cat([prompt_embeds, self.model.embed_tokens(reply_ids[:, :-1])], dim=1)
        hidden = self.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        return hidden[:, prompt_embeds.shape[1] - 1:]

    # -- speech and face -------------------------------------------------------------------------
    @torch.no_grad()
    def speak(self, llm_hidden: torch.Tensor, text_ids: list[int], sampling: UnitSampling | None = None,
              generator: torch.Generator | None = None, keep: bool = False,
              on_step: StepCallback | None = None,
              on_unit: UnitCallback | None = None, face=None) -> tuple[UnitDecoding, torch.Tensor]:
        """Units for a reply and the blendshapes [T, 52] that go with them. With `face` (a FaceStream) the
        blendshapes are made chunk by chunk while the units are decoded, and are the stream's frames."""
        generator_module = self.model.speech_generator
        ids = torch.tensor([text_ids], dtype=torch.long, device=self.device)
        step_cb = (lambda step, total: on_step("units", step, total)) if on_step else None
        decoding = generator_module.generate(llm_hidden, ids, sampling, generator, keep_logprobs=keep,
                                             on_step=step_cb, on_unit=on_unit,
                                             on_units=face.update if face is not None else None)
        units = torch.tensor([decoding.units], dtype=torch.long, device=self.device)
        if frame_count(units) == 0:
            return decoding, torch.zeros(0, self.config.blendshape_generator.out_dim)
        if on_step:
            on_step("blendshapes", 0, 1)
        if face is not None:
            return decoding, face.finish(decoding.units, decoding.hidden_states)
        blendshapes = self.model.blendshape_generator.predict(decoding.hidden_states, units)
        return decoding, blendshapes[0]

    def say(self, prompt_embeds: torch.Tensor, reply_ids: list[int], sampling: UnitSampling | None = None,
            generator: torch.Generator | None = None, on_step: StepCallback | None = None,
            on_unit: UnitCallback | None = None, face=None) -> ExomniOutput:
        """Speak `reply_ids` (ending with EOS) verbatim as the answer to the prompt."""
        if len(reply_ids) < 2:
            raise ValueError("the line to say is empty")
        t0 = time.perf_counter()
        hidden = self.teacher_force_reply(prompt_embeds, torch.tensor([reply_ids], dtype=torch.long))
        t1 = time.perf_counter()
        decoding, blendshapes = self.speak(hidden, reply_ids, sampling, generator, on_step=on_step, on_unit=on_unit,
                                           face=face)
        t2 = time.perf_counter()
        return ExomniOutput(list(reply_ids), decoding.units, blendshapes, decoding,
                            timings={"llm": t1 - t0, "speech_and_face": t2 - t1})

    def chat(self, prompt_embeds: torch.Tensor, max_new_tokens: int, eos_ids: Iterable[int],
             text_sampling: TextSampling | None = None, unit_sampling: UnitSampling | None = None,
             generator: torch.Generator | None = None, on_step: StepCallback | None = None,
             on_unit: UnitCallback | None = None, face=None) -> ExomniOutput:
        """Answer the prompt, then speak and animate the answer."""
        t0 = time.perf_counter()
        reply = self.generate_reply(prompt_embeds, max_new_tokens, eos_ids, text_sampling, generator,
                                    on_step=on_step)
        t1 = time.perf_counter()
        if len(reply.token_ids) < 2:
            return ExomniOutput(reply.token_ids, [], torch.zeros(0, self.config.blendshape_generator.out_dim),
                                None, reply, timings={"llm": t1 - t0})
        decoding, blendshapes = self.speak(reply.hidden, reply.token_ids, unit_sampling, generator, on_step=on_step,
                                           on_unit=on_unit, face=face)
        t2 = time.perf_counter()
        return ExomniOutput(reply.token_ids, decoding.units, blendshapes, decoding, reply,
                            timings={"llm": t1 - t0, "speech_and_face": t2 - t1})
