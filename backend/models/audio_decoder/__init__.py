"""The GLM-4-Voice audio decoder: 12.5 Hz speech units -> 80-bin mel (conditional flow matching) ->
22.05 kHz audio (HiFT vocoder), offline or streamed.

    decoder = load_decoder("glm-4-voice-decoder", device="cuda")
    audio, sample_rate = decoder.decode(units)
    for chunk in decoder.stream(unit_chunks): ...
"""

from .config import DecoderConfig, released_config, tiny_config
from .decoder import AudioDecoder, load_decoder, random_decoder
from .streaming import StreamSettings

__all__ = ["AudioDecoder", "DecoderConfig", "StreamSettings", "load_decoder", "random_decoder",
           "released_config", "tiny_config"]
