"""The take format: save/load round trip, Audio2Face JSON read by name, WAV codec, resampling."""

import json

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.exchange import read_a2f
from exomni_blender.core.take import Phoneme, Take, TakeFormatError, decode_wav, encode_wav, resample_curves


def make_take(frames=40, fps=30.0, seed=0):
    rng = np.random.default_rng(seed)
    sr = 22050
    audio = (0.3 * np.sin(np.arange(int(sr * frames / fps)) * 0.05)).astype(np.float32)
    return Take(fps=fps, weights=rng.random((frames, 52)), audio=audio, sample_rate=sr, text="Hello there.",
                engine="test", phonemes=[Phoneme("h", 0.0, 0.1), Phoneme("ə", 0.1, 0.2)], units=[3, 4, 5],
                timings={"synthesis": 0.01}, meta={"voice": "en-us"})


def test_canonical_order():
    assert ARKIT_52[0] == "browDownLeft" and ARKIT_52[-1] == "tongueOut" and len(ARKIT_52) == 52


def test_round_trip(tmp_path):
    take = make_take()
    take.save(tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["audio.wav", "blendshapes.json", "take.json"]
    back = Take.load(tmp_path / "t")
    assert back.frames == take.frames and back.fps == take.fps and back.names == ARKIT_52
    np.testing.assert_allclose(back.weights, take.weights, atol=1e-5)
    np.testing.assert_allclose(back.audio, take.audio, atol=1.0 / 32767 + 1e-6)
    assert back.text == take.text and back.engine == "test" and back.units == [3, 4, 5]
    assert [(p.symbol, p.start, p.end) for p in back.phonemes] == [("h", 0.0, 0.1), ("ə", 0.1, 0.2)]
    info = json.loads((tmp_path / "t" / "take.json").read_text())
    for key in ("text", "engine", "fps", "frames", "sample_rate", "duration", "phonemes", "timings"):
        assert key in info
    a2f = json.loads((tmp_path / "t" / "blendshapes.json").read_text())
    assert a2f["numPoses"] == 52 and a2f["numFrames"] == 40 and a2f["facsNames"] == list(ARKIT_52)
    assert a2f["exportFps"] == 30.0 and "trackPath" in a2f and len(a2f["weightMat"]) == 40


def test_weights_are_clamped_and_validated():
    t = Take(fps=30, weights=np.full((3, 52), 2.0))
    assert t.weights.max() == 1.0 and t.weights.dtype == np.float32
    with pytest.raises(TakeFormatError, match=r"\[frames, 52\]"):
        Take(fps=30, weights=np.zeros((3, 51)))
    with pytest.raises(TakeFormatError, match="NaN"):
        Take(fps=30, weights=np.full((3, 52), np.nan))


def test_foreign_a2f_json_maps_by_name(tmp_path):
    names = ["jawOpen", "EyeBlinkLeft", "mouthSmileRight"]  # other order, other case, a subset
    mat = [[0.5, 0.25, 0.125], [0.1, 0.2, 0.3]]
    p = tmp_path / "other.json"
    p.write_text(json.dumps({"exportFps": 60, "trackPath": "/x", "numPoses": 3, "numFrames": 2,
                             "facsNames": names, "weightMat": mat}))
    fps, w = read_a2f(p)
    assert fps == 60 and w.shape == (2, 52)
    assert w[0, INDEX["jawOpen"]] == 0.5 and w[0, INDEX["eyeBlinkLeft"]] == 0.25
    assert w[1, INDEX["mouthSmileRight"]] == pytest.approx(0.3)
    assert w[:, INDEX["browInnerUp"]].sum() == 0


def test_a2f_pose_names_map_to_arkit(tmp_path):
    p = tmp_path / "a2f.json"
    p.write_text(json.dumps({"exportFps": 30, "facsNames": ["jawDrop", "lipCornerPullerL", "funneler"],
                             "weightMat": [[0.7, 0.4, 0.2]]}))
    _, w = read_a2f(p)
    assert w[0, INDEX["jawOpen"]] == pytest.approx(0.7) and w[0, INDEX["mouthSmileLeft"]] == pytest.approx(0.4)
    assert w[0, INDEX["mouthFunnel"]] == pytest.approx(0.2)


def test_unreadable_inputs_say_why(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{not json")
    with pytest.raises(TakeFormatError, match="not valid JSON"):
        read_a2f(p)
    p.write_text(json.dumps({"facsNames": ["a"], "weightMat": [[1, 2]]}))
    with pytest.raises(TakeFormatError, match="weightMat"):
        read_a2f(p)
    p.write_text(json.dumps({"facsNames": ["foo", "bar"], "weightMat": [[1, 2]]}))
    with pytest.raises(TakeFormatError, match="retarget"):
        read_a2f(p)
    with pytest.raises(TakeFormatError, match="take folder"):
        Take.load(tmp_path / "missing")
    p.write_text(json.dumps({"facsNames": ["jawOpen", "mouthClose"], "weightMat": [[0.1, 0.2], [0.3]]}))
    with pytest.raises(TakeFormatError, match="one row of 2 numbers"):
        read_a2f(p)
    p.write_text(json.dumps({"facsNames": "jawOpen", "weightMat": [[0.1]]}))
    with pytest.raises(TakeFormatError, match="facsNames"):
        read_a2f(p)
    p.write_text(json.dumps({"exportFps": 0, "facsNames": ["jawOpen"], "weightMat": [[0.1]]}))
    with pytest.raises(TakeFormatError, match="exportFps"):
        read_a2f(p)


def test_a_broken_take_json_names_the_file(tmp_path):
    make_take().save(tmp_path / "t")
    info = json.loads((tmp_path / "t" / "take.json").read_text())
    info["phonemes"] = [{"start": 0.0, "end": 0.1}]  # no symbol
    (tmp_path / "t" / "take.json").write_text(json.dumps(info))
    with pytest.raises(TakeFormatError, match="take.json.*symbol"):
        Take.load(tmp_path / "t")


def test_wav_codec_reads_common_formats():
    x = np.sin(np.linspace(0, 50, 1000)).astype(np.float32) * 0.5
    y, sr = decode_wav(encode_wav(x, 16000))
    assert sr == 16000 and np.abs(y - x).max() < 1e-4
    import io

    import soundfile as sf
    for subtype in ("PCM_24", "PCM_32", "FLOAT", "PCM_U8"):
        buf = io.BytesIO()
        sf.write(buf, np.stack([x, 0.5 * x], 1), 8000, subtype=subtype, format="WAV")
        mono, sr = decode_wav(buf.getvalue())
        assert sr == 8000 and mono.shape == x.shape, subtype
        assert np.abs(mono - 0.75 * x).max() < 1e-2, subtype  # stereo mixed down
    with pytest.raises(TakeFormatError, match="RIFF"):
        decode_wav(b"hello world, not audio")


@pytest.mark.parametrize("args", [["-ar", "96000"], ["-af", "pan=3.0|c0=c0|c1=c0|c2=c0"]])
def test_wav_codec_reads_ffmpegs_extensible_float_wavs(tmp_path, args):
    # Above 48 kHz or two channels ffmpeg writes WAVE_FORMAT_EXTENSIBLE; the sub-format says float.
    import subprocess

    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    x = (0.6 * np.sin(np.linspace(0, 80, 4800))).astype(np.float32)
    source, out = tmp_path / "in.wav", tmp_path / "out.wav"
    source.write_bytes(encode_wav(x, 48000))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(source), *args,
                    "-c:a", "pcm_f32le", str(out)], check=True, timeout=60)
    data = out.read_bytes()
    assert data[20:22] == b"\xfe\xff"  # the extensible header this test is about
    y, sr = decode_wav(data)
    assert np.abs(y).max() == pytest.approx(np.abs(x).max(), abs=0.01)
    if args[0] == "-af":  # the same samples on three channels
        assert sr == 48000 and np.abs(y - x).max() < 1e-3


def test_broken_wav_headers_say_so():
    good = encode_wav(np.zeros(10, np.float32), 8000)
    no_channels = good[:22] + b"\x00\x00" + good[24:]
    with pytest.raises(TakeFormatError, match="0 channels"):
        decode_wav(no_channels)
    short_fmt = good[:16] + (8).to_bytes(4, "little") + good[20:28] + good[36:]
    with pytest.raises(TakeFormatError, match="fmt chunk"):
        decode_wav(short_fmt)


def test_resample_keeps_duration_and_shape():
    w = np.zeros((30, 52), np.float32)
    w[:, 0] = np.linspace(0, 1, 30)
    r = resample_curves(w, 30, 60)
    assert r.shape == (60, 52)
    assert r[0, 0] == 0 and abs(r[-2, 0] - w[-1, 0]) < 0.05
    take = make_take(frames=30).resampled(24)
    assert take.frames == 24 and take.fps == 24
