"""The `exomni` command line on bad input: a clear error and a non-zero exit, never a traceback,
and no work done before a bad output folder is noticed."""

import socket
import subprocess
import sys

import numpy as np
import pytest

from backend.cli import main
from exomni_blender.core.take import Take


def run(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_take_writes_the_take_folder(capsys, tmp_path):
    status, out, _ = run(capsys, "take", "--text", "Hello there.", "--fps", 24, "--seed", 2, "--out", tmp_path / "t")
    assert status == 0 and str(tmp_path / "t") in out
    take = Take.load(tmp_path / "t")
    assert take.fps == 24 and take.text == "Hello there." and take.phonemes
    assert abs(take.frames - take.duration * 24) <= 1


@pytest.mark.parametrize("args, message", [
    (["--text", ""], "text is empty"),
    (["--text", "Hi", "--voice", "zz-nowhere"], "unknown voice"),
    (["--mode", "lipsync", "--audio", "MISSING"], "no such audio file"),
    (["--text", "Hi", "--engine", "nope"], "unknown engine"),
])
def test_take_bad_input(capsys, tmp_path, args, message):
    args = [tmp_path / "missing.wav" if a == "MISSING" else a for a in args]
    status, _, err = run(capsys, "take", *args, "--out", tmp_path / "t")
    assert status != 0 and message in err and err.startswith("exomni: error:")
    assert not (tmp_path / "t" / "take.json").exists()


@pytest.mark.parametrize("where, message", [("file", "is a file"), ("under_file", "Not a directory")])
def test_take_bad_out_folder_is_refused_before_the_take_is_made(capsys, tmp_path, where, message):
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" if where == "file" else tmp_path / "afile" / "take"
    status, _, err = run(capsys, "take", "--text", "Hello there.", "--out", out)
    assert status != 0 and message in err
    assert "phonetic/say" not in err  # no progress: the take was not made and then thrown away
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_batch_missing_script(capsys, tmp_path):
    status, _, err = run(capsys, "batch", tmp_path / "nope.fountain", "--out", tmp_path / "out")
    assert status == 2 and "no such script file" in err
    assert not (tmp_path / "out").exists()


def test_retarget_unwritable_out(capsys, tmp_path):
    run(capsys, "take", "--text", "Hello.", "--out", tmp_path / "t")
    (tmp_path / "afile").write_text("x")
    status, _, err = run(capsys, "retarget", tmp_path / "t", "--preset", "arkit", "--out", tmp_path / "afile" / "o")
    assert status == 1 and "afile" in err and "Not a directory" in err


def test_serve_on_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--port", str(port), "--no-preload",
                            "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"port {port}" in r.stderr and "already in use" in r.stderr, r.stderr
    assert "serving on" not in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("port", ["0", "70000"])
def test_serve_port_out_of_range(tmp_path, port):
    r = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--port", port, "--no-preload",
                        "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--port must be from 1 to 65535" in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["0", "4", "nan"])
def test_one_range_per_option_in_the_error_and_the_help(capsys, tmp_path, value):
    stated = "from 0.5 to 2.5"  # eSpeak NG's 80..450 words per minute around its 175 at 1.0
    status, _, err = run(capsys, "take", "--text", "Hi", "--rate", value, "--out", tmp_path / "t")
    assert status != 0 and stated in err
    with pytest.raises(SystemExit):
        main(["take", "--help"])
    assert stated in " ".join(capsys.readouterr().out.split())


def test_a_recording_without_a_mode_is_lip_synced(capsys, tmp_path):
    run(capsys, "take", "--text", "Bob bought a pink balloon.", "--out", tmp_path / "said")
    status, _, err = run(capsys, "take", "--audio", tmp_path / "said" / "audio.wav",
                         "--text", "Bob bought a pink balloon.", "--out", tmp_path / "synced")
    assert status == 0, err
    take = Take.load(tmp_path / "synced")
    assert take.mode == "lipsync" and take.phonemes


def test_errors_speak_of_the_command_line_not_of_http(capsys, tmp_path):
    status, _, err = run(capsys, "take", "--mode", "lipsync", "--text", "hi", "--out", tmp_path / "t")
    assert status != 0 and "recording" in err and "multipart" not in err and "GET /v1" not in err
    status, _, err = run(capsys, "take", "--text", "Hi", "--voice", "zz-nowhere", "--out", tmp_path / "t")
    assert status != 0 and "exomni voices" in err and "GET /v1" not in err


def test_voices_lists_what_voice_accepts(capsys):
    status, out, _ = run(capsys, "voices")
    assert status == 0 and "en-us" in out and "en-gb" in out


def test_take_with_mood_intensity_and_head_motion(capsys, tmp_path):
    from exomni_blender.core import face

    status, _, _ = run(capsys, "take", "--text", "Bring the boat back by noon.", "--mood", "sad", "--intensity", 0.5,
                       "--head-motion", 0, "--out", tmp_path / "t")
    assert status == 0
    take = Take.load(tmp_path / "t")
    assert face.mood_of(take.meta) == ("sad", 0.5) and face.head_rotation(take.meta) is None  # 0: a still head
    status, _, _ = run(capsys, "take", "--text", "Bring the boat back by noon.", "--head-motion", 2,
                       "--out", tmp_path / "h")
    assert status == 0 and np.abs(face.head_rotation(Take.load(tmp_path / "h").meta)).max() > 1.0


@pytest.mark.parametrize("args, stated", [
    (["--mood", "grumpy"], "mood must be one of neutral, happy, sad"),
    (["--intensity", "1.5"], "intensity must be a number from 0 to 1"),
    (["--head-motion", "-1"], "head_motion must be a number from 0 to 2"),
])
def test_mood_options_out_of_range_say_the_range(capsys, tmp_path, args, stated):
    status, _, err = run(capsys, "take", "--text", "Hi", *args, "--out", tmp_path / "t")
    assert status != 0 and stated in err and not (tmp_path / "t" / "take.json").exists()
    with pytest.raises(SystemExit):
        main(["take", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "mood shows; a number from 0 to 1" in help_text and "still head; a number from 0 to 2" in help_text
    assert "disgusted" in help_text


def test_a_take_that_fails_leaves_no_output_folder(capsys, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    status, _, err = run(capsys, "take", "--audio", bad, "--out", tmp_path / "out" / "t")
    assert status != 0 and "no audio header" in err
    assert not (tmp_path / "out").exists()  # outputs only when whole: not even an empty folder


def test_arguments_that_are_not_utf8_are_refused_in_words(tmp_path):
    """A shell passes bytes; Python turns bytes that are not UTF-8 into lone surrogates."""
    r = subprocess.run([sys.executable, "-m", "backend.cli", "take", "--text", b"caf\xe9 au lait",
                        "--out", str(tmp_path / "t")], capture_output=True, timeout=120)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0 and "Traceback" not in err and "not UTF-8" in err
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("content, words", [
    (bytes(range(256)) * 8, "is not text"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_a_rig_key_list_that_is_not_one_is_refused_in_words(capsys, tmp_path, content, words):
    run(capsys, "take", "--text", "Hi.", "--out", tmp_path / "t")
    keys = tmp_path / "keys.txt"
    keys.write_bytes(content)
    status, _, err = run(capsys, "retarget", tmp_path / "t", "--rig-keys", keys, "--out", tmp_path / "r")
    assert status != 0 and words in err and not (tmp_path / "r").exists()


def test_a_huge_screenplay_is_refused_before_any_work(capsys, tmp_path):
    script = tmp_path / "epic.fountain"
    script.write_text("BOB\nHello there, this is a line.\n\n" * 120_000)  # 3.8 MB
    status, _, err = run(capsys, "batch", script, "--out", tmp_path / "out")
    assert status != 0 and "split it into scenes" in err and not (tmp_path / "out" / "takes").exists()


def test_a_long_screenplay_is_refused_with_its_estimate_unless_confirmed(capsys, tmp_path):
    script = tmp_path / "long.fountain"
    script.write_text("".join(f"BOB\nThis is line number {i} of a very long scene.\n\n" for i in range(600)))
    status, _, err = run(capsys, "batch", script, "--out", tmp_path / "out")
    assert status != 0 and "600 lines" in err and "minutes of speech" in err and "--confirm-large-batch" in err
    assert not (tmp_path / "out" / "takes").exists()  # nothing made
