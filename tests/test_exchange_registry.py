"""Exchange formats as a registry: a format defined here, outside the product, is offered and works in
`exomni convert` (through the entry-point group, in a real subprocess), in load_any and in the take
panel's file filter; the take format's version is checked on load; one PCM16/WAV codec and one audio
sniffer; the take module does not import the exchange formats."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exomni_blender.core import audio_codec
from exomni_blender.core.arkit import INDEX
from exomni_blender.core.exchange import (ENTRY_POINT_GROUP, ExchangeFormatError, Format, detect_format,
                                          exchange_file_for, file_filter, formats, get_format, load_any,
                                          readable_formats, register_format, unregister_format, writable_formats)
from exomni_blender.core.take import FORMAT_VERSION, TAKE_JSON, Take, TakeFormatError

REPO = Path(__file__).resolve().parents[1]


# -- a toy format: "TOY <fps>" then one jawOpen value a line --------------------------------------------

def _toy_sniff(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".toy"):
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"TOY "


def _toy_read(path, **opts) -> Take:
    lines = Path(path).read_text().split("\n")
    jaw = [float(v) for v in lines[1:] if v.strip()]
    weights = np.zeros((len(jaw), 52), np.float32)
    weights[:, INDEX["jawOpen"]] = jaw
    return Take(fps=float(lines[0].split()[1]), weights=weights, text=Path(path).stem, engine="import")


def _toy_write(take, path, **opts) -> list:
    path = Path(path)
    rows = "".join(f"{v:.5f}\n" for v in take.channel("jawOpen"))
    path.write_text(f"TOY {take.fps:g}\n{rows}")
    return [path]


TOY = Format(name="toy", label="toy jaw curve (TOY fps, then one jawOpen value a line)", suffixes=(".toy",),
             sniff=_toy_sniff, read=_toy_read, write=_toy_write, hint="a .toy jaw curve", paired_audio=False)


@pytest.fixture
def toy():
    register_format(TOY)
    yield TOY
    unregister_format("toy")


def jaw_take(frames=30, fps=30.0, audio=True) -> Take:
    w = np.zeros((frames, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, frames)
    sound = 0.2 * np.sin(np.arange(int(frames / fps * 16000)) * 0.05) if audio else np.zeros(0)
    return Take(fps=fps, weights=w, audio=sound, sample_rate=16000, text="line")


# -- the registry --------------------------------------------------------------------------------------

def test_the_built_in_formats_come_from_the_registry():
    names = [f.name for f in formats()]
    assert names[:4] == ["take", "a2f", "livelink", "rhubarb"]  # sniffing order: a take folder first
    assert {f.name for f in readable_formats()} >= {"take", "a2f", "livelink", "rhubarb"}
    assert {f.name for f in writable_formats()} >= {"take", "a2f", "livelink", "rhubarb"}
    assert file_filter() == "*.json;*.csv;*.wav"


def test_a_registered_format_is_detected_read_written_and_offered(toy, tmp_path):
    assert "toy" in [f.name for f in readable_formats()] and "toy" in [f.name for f in writable_formats()]
    assert "*.toy" in file_filter().split(";")
    path = tmp_path / "jaw.toy"
    assert get_format("toy").write(jaw_take(), path) == [path]
    assert detect_format(path) == "toy"
    take, kind = load_any(path)
    assert kind == "toy" and take.frames == 30 and take.channel("jawOpen")[-1] == pytest.approx(1.0)
    (tmp_path / "jaw.wav").write_bytes(audio_codec.encode_wav(np.zeros(100), 8000))
    assert exchange_file_for(tmp_path / "jaw.wav") == path  # its WAV picked: the file that goes with it
    assert exchange_file_for(tmp_path) == path  # the only file in the folder a format reads


def test_without_the_format_the_file_is_unknown(tmp_path):
    path = tmp_path / "jaw.toy"
    path.write_text("TOY 30\n0.5\n")
    with pytest.raises(ExchangeFormatError, match="unknown kind of file"):
        detect_format(path)


def test_a_format_must_read_or_write_and_name_its_suffixes_properly():
    with pytest.raises(ValueError, match="neither reads nor writes"):
        register_format(Format(name="nothing", label="nothing"))
    with pytest.raises(ValueError, match="lower case"):
        register_format(Format(name="bad", label="bad", suffixes=("TOY",), read=_toy_read))
    with pytest.raises(ValueError, match="a word"):
        register_format(Format(name="two words", label="x", read=_toy_read))
    with pytest.raises(ExchangeFormatError, match="no exchange format named 'nothing'"):
        get_format("nothing")


def test_a_take_folders_blendshapes_json_is_a_take_not_an_audio2face_export(tmp_path):
    jaw_take().save(tmp_path / "t")
    assert detect_format(tmp_path / "t") == "take"
    assert detect_format(tmp_path / "t" / "blendshapes.json") == "take"
    assert exchange_file_for(tmp_path / "t" / "audio.wav") == tmp_path / "t"  # its audio picked: the take
    (tmp_path / "export.json").write_bytes((tmp_path / "t" / "blendshapes.json").read_bytes())
    assert detect_format(tmp_path / "export.json") == "a2f"


def test_unreadable_picks_are_explained(tmp_path):
    with pytest.raises(ExchangeFormatError, match="nothing at"):
        exchange_file_for(tmp_path / "missing.json")
    (tmp_path / "lonely.wav").write_bytes(audio_codec.encode_wav(np.zeros(100), 8000))
    with pytest.raises(ExchangeFormatError, match="audio only"):
        exchange_file_for(tmp_path / "lonely.wav")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ExchangeFormatError, match="not a take"):
        exchange_file_for(tmp_path / "notes.txt")
    with pytest.raises(ExchangeFormatError, match="holds no file to read"):
        exchange_file_for(tmp_path)
    (tmp_path / "broken.json").write_text("{nope")
    with pytest.raises(ExchangeFormatError, match="not valid JSON"):
        detect_format(tmp_path / "broken.json")


# -- the command line, with the format added by an entry point -------------------------------------------

def plugin_env(tmp_path, entries: str) -> dict:
    """An environment whose Python finds a distribution declaring `entries` in the exchange group."""
    site = tmp_path / "site"
    dist = site / "exomni_toy_format-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exomni-toy-format\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entries}\n")
    path = os.pathsep.join([str(site), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def exomni(env, *args):
    return subprocess.run([sys.executable, "-m", "backend.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)


def test_exomni_convert_offers_and_uses_a_plugin_format(tmp_path):
    env = plugin_env(tmp_path, "toy = test_exchange_registry:TOY")
    shown = exomni(env, "convert", "--help")
    assert shown.returncode == 0 and "toy" in shown.stdout, shown.stdout + shown.stderr

    jaw_take().save(tmp_path / "take")
    made = exomni(env, "convert", tmp_path / "take", "--to", "toy", "--out", tmp_path / "jaw.toy")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "jaw.toy").read_text().startswith("TOY 30\n") and "from take" in made.stdout

    back = exomni(env, "convert", tmp_path / "jaw.toy", "--to", "livelink", "--out", tmp_path / "jaw.csv")
    assert back.returncode == 0, back.stderr
    assert "from toy" in back.stdout and "no audio found" not in back.stderr  # its sound is not a WAV beside it
    assert Take.load(tmp_path / "take").frames == len((tmp_path / "jaw.csv").read_text().splitlines()) - 1

    wrong = exomni(env, "convert", tmp_path / "take", "--to", "toy", "--out", tmp_path / "jaw.csv")
    assert wrong.returncode == 2 and "should end in .toy" in wrong.stderr


def test_without_the_plugin_the_format_is_not_offered(tmp_path):
    jaw_take().save(tmp_path / "take")
    result = exomni(dict(os.environ), "convert", tmp_path / "take", "--to", "toy", "--out", tmp_path / "jaw.toy")
    assert result.returncode == 2 and "invalid choice: 'toy'" in result.stderr and "rhubarb" in result.stderr


def test_a_broken_plugin_is_reported_and_the_built_in_formats_still_work(tmp_path):
    env = plugin_env(tmp_path, "broken = no_such_module_here:FORMAT")
    jaw_take().save(tmp_path / "take")
    result = exomni(env, "convert", tmp_path / "take", "--to", "rhubarb", "--out", tmp_path / "mouth.json")
    assert result.returncode == 0, result.stderr
    assert "exchange format plugin broken" in result.stderr and "ModuleNotFoundError" in result.stderr
    assert json.loads((tmp_path / "mouth.json").read_text())["metadata"]["soundFile"] == "mouth.wav"


# -- the take format's version ---------------------------------------------------------------------------

def set_version(folder: Path, version):
    info = json.loads((folder / TAKE_JSON).read_text())
    if version is None:
        info.pop("format_version")
    else:
        info["format_version"] = version
    (folder / TAKE_JSON).write_text(json.dumps(info))


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, f"{FORMAT_VERSION + 1}.0", 7.5])
def test_a_take_of_a_newer_format_is_refused_saying_what_to_do(tmp_path, version):
    folder = jaw_take().save(tmp_path / "t")
    set_version(folder, version)
    for load in (lambda: Take.load(folder), lambda: load_any(folder / "blendshapes.json"),
                 lambda: get_format("a2f").read(folder / "blendshapes.json")):
        with pytest.raises(TakeFormatError) as err:
            load()
        message = str(err.value)
        assert f"take format version {version}" in message and f"version {FORMAT_VERSION} and older" in message
        assert "update the Ex-Omni add-on" in message and str(folder / TAKE_JSON) in message


@pytest.mark.parametrize("version", [None, 0, FORMAT_VERSION, f"{FORMAT_VERSION}.4"])
def test_a_take_of_this_or_an_older_format_loads(tmp_path, version):
    folder = jaw_take().save(tmp_path / "t")
    set_version(folder, version)
    assert Take.load(folder).frames == 30


def test_a_version_that_is_no_number_is_named(tmp_path):
    folder = jaw_take().save(tmp_path / "t")
    set_version(folder, "banana")
    with pytest.raises(TakeFormatError, match="format_version 'banana' is not a version number"):
        Take.load(folder)


# -- one PCM16/WAV codec, one sniffer ---------------------------------------------------------------------

def test_pcm16_is_what_audio_wav_stores():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 1 / 65534, 0.5, 1.0, 3.0], np.float32)
    pcm = audio_codec.to_pcm16(x)
    assert np.frombuffer(pcm, "<i2").tolist() == [-32767, -32767, -16384, 0, 0, 16384, 32767, 32767]
    wav = audio_codec.encode_wav(x, 16000)
    assert wav.endswith(pcm) and len(wav) == 44 + len(pcm)
    assert audio_codec.wav_pcm16(wav) == (16000, pcm)
    samples, rate = audio_codec.decode_wav(wav)
    assert rate == 16000 and np.array_equal(samples, audio_codec.from_pcm16(pcm))
    assert audio_codec.from_pcm16(b"\x00\x80\xff\x7f\x01").tolist() == [-1.0, 32767 / 32768]  # odd byte dropped


def test_the_wav_codec_matches_the_stdlib_reader(tmp_path):
    import wave

    x = 0.3 * np.sin(np.arange(1000) * 0.1)
    (tmp_path / "a.wav").write_bytes(audio_codec.encode_wav(x, 22050))
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 22050, 1000)
        assert w.readframes(1000) == audio_codec.to_pcm16(x)
    with pytest.raises(audio_codec.WavFormatError, match="RIFF") as err:
        audio_codec.decode_wav(b"not audio at all")
    assert isinstance(err.value, TakeFormatError)


@pytest.mark.parametrize("head, kind", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"), (b"RF64\xff\xff\xff\xffWAVEds64", "wav"),
    (b"RIFF\x24\x00\x00\x00AVI LIST", "riff"), (b"fLaC\x00\x00\x00\x22", "flac"), (b"OggS\x00\x02", "ogg"),
    (b"FORM\x00\x00\x10\x00AIFFCOMM", "aiff"), (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
    (b"ID3\x04\x00\x00", "mp3"), (b"\xff\xfb\x90\x64", "mp3"), (b"\xff\xf1\x50\x80", "aac"),
    (b"\x1aE\xdf\xa3\x9fB\x86\x81", "webm"), (b"\x89PNG\r\n\x1a\n", "image"), (b"\x00\x00\x01\xba", "video"),
    (b"\x01\x02\x03\x04\x05\x06", "raw"), (b"", "raw"),
])
def test_one_sniffer_names_the_container(head, kind):
    assert audio_codec.sniff_audio(head) == kind
    assert audio_codec.audio_suffix(head) == audio_codec.AUDIO_SUFFIXES.get(kind, ".wav")


# -- no circle between the take and the exchange formats ---------------------------------------------------

def imported_modules(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_take_imports_no_exchange_format():
    core = REPO / "exomni_blender" / "core"
    for module in ("take.py", "a2f_document.py", "audio_codec.py"):
        assert not [m for m in imported_modules(core / module) if "exchange" in m], module
    code = ("import sys, exomni_blender.core.take\n"
            "assert not [m for m in sys.modules if 'exchange' in m], sorted(sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
