"""Pictures of a take for people: the main mouth channels over the waveform."""

from __future__ import annotations

import numpy as np

from exomni_blender.core.take import Take

PLOTTED = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthLowerDownLeft",
           "mouthRollLower", "eyeBlinkLeft")


def plot_curves(take: Take, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_wave, ax) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    if take.has_audio:
        t = np.arange(take.audio.size) / take.sample_rate
        ax_wave.plot(t, take.audio, lw=0.4, color="0.3")
    ax_wave.set_ylabel("audio")
    ax_wave.set_title(f"{take.engine}: {take.text[:90]}")
    frames_t = np.arange(take.frames) / take.fps
    for name in PLOTTED:
        ax.plot(frames_t, take.channel(name), label=name, lw=1.2)
    for p in take.phonemes:
        ax.axvline(p.start, color="0.85", lw=0.5, zorder=0)
        ax.text(p.start, 1.02, p.symbol, fontsize=6, color="0.4", transform=ax.get_xaxis_transform())
    ax.set_ylim(0, 1)
    ax.set_xlabel("seconds")
    ax.set_ylabel("weight")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
