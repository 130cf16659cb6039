"""The Ex-Omni model (arXiv 2602.07106) in PyTorch + transformers, loading the released checkpoint.

One module per part, each with the released weight names:
  configuration.py         the configs, read from the released config.json and its two sub-configs
  tqgf.py                  token-as-query gated fusion (shared by both generators)
  speech_encoder.py        Whisper encoder + frame-concatenating projector
  speech_generator.py      LLM states + reply tokens -> speech units (inner Qwen3, KV cache)
  blendshape_generator.py  units + speech-generator states -> ARKit-52 at 30 fps
  modeling.py              the causal LM: speech spliced at <speech>, say and chat
  sampling.py              greedy, the text sampler, repetition-aware unit sampling
  prompting.py             tokenizer, <speech> token, chat template
  speech_input.py          a recording -> Whisper log-mel features
  loading.py               the checkpoint folder -> a loaded model (every weight accounted for)
  pipeline.py              text in, units and curves out
  tiny.py                  a small random checkpoint in the released layout
  released.py              the released model's sizes, and a random model of them built on a device

Importing this package does not import torch; the modules do.
"""

__all__ = ["load_exomni", "make_tiny_checkpoint"]


def load_exomni(*args, **kwargs):
    from .loading import load_exomni as load

    return load(*args, **kwargs)


def make_tiny_checkpoint(*args, **kwargs):
    from .tiny import make_tiny_checkpoint as make

    return make(*args, **kwargs)
