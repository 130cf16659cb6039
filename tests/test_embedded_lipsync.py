"""The embedded engine lip-syncs from the Linux zip's own wheels: they are installed into a clean
environment (numpy, which Blender ships, added), and the take's phones match the server path's."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from backend.extension_build import ENGINE_DIR, ExtensionBuildError, build_extension

RECORDING = Path(__file__).parent / "data" / "aligned_speech" / "acoustic_corpus.flac"


@pytest.fixture(scope="module")
def clean_engine(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp().parent / "exomni-extension-wheels"
    try:
        built = build_extension(tmp_path_factory.mktemp("linux"), platform="linux-x64", wheel_cache=cache)
    except ExtensionBuildError as exc:
        if "PyPI" in str(exc):
            pytest.skip(f"the wheels cannot be downloaded here: {exc}")
        raise
    root = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(built) as zf:
        zf.extractall(root)
    env = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    wheels = [str(w) for w in (root / "wheels").glob("*.whl")
              if w.name.split("-")[-3] == tag or w.name.split("-")[-3].startswith("py")]
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", *wheels, "numpy==1.26.4"],
                             capture_output=True, text=True)
    if install.returncode != 0:
        pytest.skip(f"numpy could not be installed into the clean environment: {install.stderr[-500:]}")
    check = subprocess.run([str(python), "-c", "import scipy"], capture_output=True)
    assert check.returncode != 0, "the clean environment must not have scipy"
    return python, root


def _embedded_take(python, root, tmp_path, text):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"engine": "phonetic", "mode": "lipsync", "text": text,
                                   "audio_path": str(RECORDING)}), encoding="utf-8")
    out = tmp_path / "take"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = os.pathsep.join([str(root / ENGINE_DIR), str(root.parent / "pkg")])
    pkg = root.parent / "pkg"
    if not (pkg / "exomni_blender").exists():  # the zip's root is the add-on package itself
        pkg.mkdir(exist_ok=True)
        (pkg / "exomni_blender").symlink_to(root, target_is_directory=True)
    result = subprocess.run([str(python), "-m", "backend.embedded", str(request), str(out)], capture_output=True,
                            text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    from exomni_blender.core.take import Take

    return Take.load(out)


@pytest.mark.parametrize("with_transcript", [True, False])
def test_the_zip_alone_lip_syncs_a_recording_as_the_server_does(clean_engine, tmp_path, with_transcript):
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.lipsync import lipsync_take

    python, root = clean_engine
    text = RECORDING.with_suffix(".lab").read_text(encoding="utf-8").strip() if with_transcript else ""
    embedded = _embedded_take(python, root, tmp_path, text)
    server = lipsync_take(TakeRequest(engine="phonetic", mode="lipsync", text=text, audio_path=str(RECORDING)),
                          Progress())
    assert embedded.meta["alignment"] == server.meta["alignment"]
    assert [(p.symbol, p.start, p.end) for p in embedded.phonemes] == [(p.symbol, p.start, p.end) for p in server.phonemes]
    assert embedded.meta["words"] == server.meta["words"]
    # Without a transcript the recording is recognised in parts at once: the zip's engine starts its
    # helper processes from its own files as the server does.
    assert embedded.meta["alignment_processes"] == server.meta["alignment_processes"]
    if not with_transcript and len(os.sched_getaffinity(0)) >= 2:
        assert embedded.meta["alignment_processes"] == 2
