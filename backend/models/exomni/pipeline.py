"""Text in, speech units and 30 fps blendshapes out: the loaded model with its tokenizer and prompts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import prompting
from .loading import LoadedExomni
from .modeling import StepCallback, UnitCallback
from .sampling import TextSampling, UnitSampling


@dataclass
class Performance:
    text: str  # what is spoken: the line (say) or the answer (chat)
    units: list[int]
    blendshapes: np.ndarray  # float32 [T, 52] at 30 fps, raw model output (not clipped)
    text_ids: list[int] = field(default_factory=list)
    prompt: str = ""  # chat: the user's prompt
    unit_stop: str = ""  # "eos" or "max_len"
    text_stop: str = ""  # chat: "eos" or "max_new_tokens"
    timings: dict = field(default_factory=dict)
    prompt_dropped: int = 0  # prompt positions cut by tokenizer_model_max_length


class ExomniPipeline:
    def __init__(self, loaded: LoadedExomni):
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self._speech_features = None
        self.max_prompt_positions = int(loaded.config.raw.get("tokenizer_model_max_length") or 0)
        self._dropped = 0

    def _embed(self, messages, speech_paths=()):
        """The prompt's embeddings with speech spliced in, cut to tokenizer_model_max_length positions when
        the config sets it (the reference keeps the first positions, after splicing, as LLaVA does)."""
        import torch

        ids = prompting.prompt_ids(self.tokenizer, messages)
        features = []
        for path in speech_paths:
            mel, length = self.speech_features(path)
            features += self.model.encode_speech(mel, length)
        embeds = self.model.embed_prompt(torch.tensor([ids]), features)
        limit = self.max_prompt_positions
        self._dropped = max(0, embeds.shape[1] - limit) if limit else 0
        return embeds[:, :limit] if self._dropped else embeds

    def speech_features(self, path):
        if self._speech_features is None:
            from .speech_input import SpeechFeatures

            enc = self.loaded.config.speech_encoder
            self._speech_features = SpeechFeatures(self.loaded.speech_encoder_folder, enc.mel_frames, enc.num_mel_bins)
        return self._speech_features(path)

    def say(self, line: str, unit_sampling: UnitSampling | None = None, generator=None,
            on_step: StepCallback | None = None, instruction: str = prompting.SAY_INSTRUCTION,
            on_unit: UnitCallback | None = None, face=None) -> Performance:
        line = line.strip()
        if not line:
            raise ValueError("the line to say is empty")
        embeds = self._embed(prompting.say_messages(line, instruction=instruction))
        reply = prompting.reply_ids(self.tokenizer, line)
        out = self.model.say(embeds, reply, unit_sampling, generator, on_step, on_unit, face)
        return Performance(line, out.units, _numpy(out.blendshapes), out.text_ids,
                           unit_stop=out.unit_decoding.stop_reason, timings=out.timings,
                           prompt_dropped=self._dropped)

    def chat(self, prompt: str, text_sampling: TextSampling | None = None, unit_sampling: UnitSampling | None = None,
             max_new_tokens: int = 128, generator=None, speech_path=None,
             on_step: StepCallback | None = None, on_unit: UnitCallback | None = None,
             face=None) -> Performance:
        prompt = (prompt or "").strip()
        if not prompt and speech_path is None:
            raise ValueError("the prompt is empty")
        messages = prompting.chat_messages(prompt, with_speech=speech_path is not None)
        embeds = self._embed(messages, [speech_path] if speech_path is not None else [])
        out = self.model.chat(embeds, max_new_tokens, self.loaded.eos_ids, text_sampling, unit_sampling,
                              generator, on_step, on_unit, face)
        reply = self.tokenizer.decode(out.text_ids, skip_special_tokens=True).strip()
        return Performance(reply, out.units, _numpy(out.blendshapes), out.text_ids, prompt=prompt,
                           unit_stop=out.unit_decoding.stop_reason if out.unit_decoding else "",
                           text_stop=out.reply.stop_reason if out.reply else "", timings=out.timings,
                           prompt_dropped=self._dropped)


def _numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32).reshape(-1, t.shape[-1])
