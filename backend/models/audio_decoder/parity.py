"""Parity with the reference on an `audio_decoder` fixture folder (see the fixtures' README, section 5).

`check(folder)` loads the fixture's weights and config through the same loader as the released files,
recomputes every recorded output and returns (name, max_abs_err, ok) per output key. Every dimension
comes from the fixture's config.json and tensors; nothing is assumed about sizes or seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

# (atol, rtol) per output; keys not listed use DEFAULT_TOLERANCE. Exact keys must match exactly.
EXACT = ("flow.feat_len", "flow.intermediate.lr_nearest_src_index")
TOLERANCES = {
    "hift.f0": (1e-3, 1e-4),  # Hz; values reach ~450, so rtol dominates on voiced frames
    "flow.intermediate.t_span": (1e-6, 0.0),
}
DEFAULT_TOLERANCE = (1e-3, 0.0)  # mel, intermediates, source and waveform


def _compute(decoder, inputs: dict) -> dict:
    flow, hift = decoder.flow, decoder.hift
    dev = decoder.device
    tokens = inputs["flow.tokens"].to(dev)
    n_units = tokens.size(1)
    n_frames = decoder.mel_frames(n_units)
    noise = inputs["flow.noise_seed42"].to(dev)
    out = {}

    from .flow import nearest_source_index

    encoded = flow.encode(tokens)
    projected = flow.encoder_proj(encoded)
    mu = flow.length_regulator(projected, n_frames)
    spks = flow.speaker_condition(tokens.size(0))
    zeros = torch.zeros_like(mu)
    t0 = torch.zeros((), device=dev)
    out["flow.feat_len"] = torch.tensor([n_frames])
    out["flow.intermediate.encoder_out"] = encoded
    out["flow.intermediate.encoder_proj"] = projected
    out["flow.intermediate.lr_nearest_src_index"] = nearest_source_index(n_units, n_frames)
    out["flow.intermediate.mu"] = mu
    out["flow.intermediate.spks"] = spks
    x0 = noise * flow.cfg.temperature
    out["flow.intermediate.estimator_step0_cond"] = flow.decoder.estimator(x0, mu, t0, spks, zeros)
    out["flow.intermediate.estimator_step0_uncond"] = flow.decoder.estimator(x0, zeros, t0, torch.zeros_like(spks),
                                                                             zeros)
    out["flow.intermediate.t_span"] = flow.decoder.step_times()
    out["flow.mel_seed42"] = decoder.units_to_mel(tokens, noise=noise)
    out["flow.mel_zero_noise"] = decoder.units_to_mel(tokens, deterministic=True)

    mel = inputs["hift.mel"].to(dev)
    wave, source, f0 = hift(mel)
    out["hift.f0"] = f0
    out["hift.zero_noise.source"] = source
    out["hift.zero_noise.waveform"] = wave
    wave, source, _ = hift(mel, inputs["hift.phase_given"].to(dev), inputs["hift.sine_noise_given"].to(dev))
    out["hift.given_noise.source"] = source
    out["hift.given_noise.waveform"] = wave
    out["chain.waveform"] = decoder.mel_to_audio(out["flow.mel_seed42"], deterministic=True).unsqueeze(0)
    return out


def check(folder, device: str = "cpu") -> list[tuple[str, float, bool]]:
    """[(output key, max abs error, within tolerance)] for every output the fixture records."""
    from safetensors.torch import load_file

    from .decoder import load_decoder

    folder = Path(folder)
    for name in ("config.json", "inputs.safetensors", "outputs.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not an audio_decoder fixture folder: {name} is missing")
    decoder = load_decoder(folder, device=device)
    inputs = load_file(str(folder / "inputs.safetensors"))
    expected = load_file(str(folder / "outputs.safetensors"))
    with torch.inference_mode():
        ours = _compute(decoder, inputs)

    results = []
    for key in expected:
        want = expected[key]
        got = ours.get(key)
        if got is None:
            results.append((key, math.nan, False))  # an output this check does not know how to make
            continue
        got = got.detach().cpu()
        if tuple(got.shape) != tuple(want.shape):
            results.append((key, math.inf, False))
            continue
        diff = (got.double() - want.double()).abs()
        err = float(diff.max()) if diff.numel() else 0.0
        if key in EXACT:
            ok = bool(torch.equal(got.long(), want.long()))
        else:
            atol, rtol = TOLERANCES.get(key, DEFAULT_TOLERANCE)
            ok = bool((diff <= atol + rtol * want.double().abs()).all())
        results.append((key, err, ok))
    return results


def report(results) -> str:
    lines = [f"{'ok' if ok else 'FAIL':4s}  {err:10.3g}  {name}" for name, err, ok in results]
    return "\n".join(lines)
