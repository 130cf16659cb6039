"""The extension zip: a valid blender_manifest.toml made from addon_manifest.toml, the package at the
zip root, accepted by Blender's own validator, and installable by Blender's extension system.

The per-platform zips carry the embedded engine's wheels. The tests build only the Linux x64 zip
(about 70 MB of wheels, downloaded once by pip); the other platforms' zips are built the same way by
`exomni build-extension` and differ only in the platform tag pip is given."""

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from backend.cli import main as cli_main
from backend.extension_build import (DATA_DIRS, ENGINE_DIR, MANIFEST_NAME, MANIFEST_SOURCE, PACKAGE_DIR, REPO,
                                     ExtensionBuildError, build_extension, read_manifest)

REQUIRED = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min",
            "license")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_extension(tmp_path_factory.mktemp("ext"))


def test_zip_is_named_by_id_and_version_and_has_the_manifest_at_its_root(built):
    source = tomllib.loads(MANIFEST_SOURCE.read_text())
    assert built.name == f"{source['id']}-{source['version']}.zip" == f"exomni_blender-{source['version']}.zip"
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read(MANIFEST_NAME).decode())
        assert zf.testzip() is None
    assert all(manifest.get(key) for key in REQUIRED)
    assert manifest["schema_version"] == "1.0.0" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0" and manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    assert set(manifest["permissions"]) == {"network", "files"}
    assert {k: v for k, v in manifest.items() if k != "schema_version"} == source  # one source of truth
    assert MANIFEST_NAME in names and "__init__.py" in names  # the package's files sit beside the manifest


# Files the extension cannot work without, named here rather than listed by the builder's own walk.
ESSENTIAL = ["__init__.py", "core/take.py", "core/arkit.py", "core/contract.py", "core/request.py",
             "remote/client.py", "blender/compat.py", "blender/keying.py", "blender/timeline.py", "ui/__init__.py",
             "presets/arkit.toml", "presets/character_creator.toml", MANIFEST_NAME]
LAYERS = {"core", "remote", "blender", "ui", "presets", ENGINE_DIR}
# The embedded engine's code, named here rather than taken from the builder's list.
ENGINE_ESSENTIAL = ["engine/backend/__init__.py", "engine/backend/embedded.py", "engine/backend/engines/base.py",
                    "engine/backend/engines/phonetic/engine.py", "engine/backend/engines/phonetic/espeak.py",
                    "engine/backend/engines/phonetic/curves.py"]


@pytest.fixture(params=["any", "linux-x64"])
def each_zip(request, built):
    return built if request.param == "any" else request.getfixturevalue("linux_zip")


def test_zip_holds_the_package_and_its_presets_and_nothing_else(each_zip):
    built = each_zip
    with zipfile.ZipFile(built) as zf:
        names = set(zf.namelist())
    assert set(ESSENTIAL) <= names, set(ESSENTIAL) - names
    if "linux" in built.name:
        assert set(ENGINE_ESSENTIAL) <= names, set(ENGINE_ESSENTIAL) - names
        names = {n for n in names if not n.endswith(".whl")}
    else:
        # The zip for every platform is the server-only one: no embedded engine, no wheels.
        assert not any(n.startswith(("wheels/", ENGINE_DIR + "/")) for n in names)
    for name in names:
        top = name.split("/")[0]
        assert "/" not in name or top in LAYERS, f"{name} is outside the extension's layers"
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo")), name
        assert not Path(name).name.startswith(("test_", "bench_", ".")), name
        assert not name.startswith("exomni_blender/"), "the package's files sit at the zip's root"
    presets = {n for n in names if n.startswith("presets/")}
    assert presets and all(n.endswith(".toml") for n in presets)
    with zipfile.ZipFile(built) as zf:  # every Python file in the zip is the repository's own, byte for byte
        for name in names:
            if name.startswith(ENGINE_DIR + "/"):
                assert zf.read(name) == (REPO / name[len(ENGINE_DIR) + 1:]).read_bytes(), name
            elif name.endswith(".py"):
                assert zf.read(name) == (PACKAGE_DIR / name).read_bytes(), name


def test_the_same_sources_build_the_same_bytes(built, tmp_path):
    again = build_extension(tmp_path)
    assert again.read_bytes() == built.read_bytes()


def test_blenders_own_validator_accepts_the_zip(built):
    validator = _bl_pkg_cli()
    result = subprocess.run([sys.executable, str(validator), "validate", str(built)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


INSTALL_SCRIPT = r"""
import importlib, json, pkgutil, sys
import bpy
zip_path, repo_dir = sys.argv[1], sys.argv[2]
prefs = bpy.context.preferences
repo = prefs.extensions.repos.new(name="ExOmni test", module="exomni_test", custom_directory=repo_dir, source="USER")
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=repo.module, enable_on_install=True)
name = "bl_ext.exomni_test.exomni_blender"
package = sys.modules[name]
modules = sorted(m.name for m in pkgutil.walk_packages(package.__path__, name + "."))
imported = [importlib.import_module(m).__name__[len(name) + 1:] for m in modules]
addon = prefs.addons.get(name)
report = {
    "result": sorted(result),
    "enabled": addon is not None,
    "prefs_url": addon.preferences.backend_url if addon else None,
    "panel": hasattr(bpy.types, "EXOMNI_PT_main"),
    "generate": bpy.ops.exomni.generate.idname(),
    "imported": imported,
    "preset_dirs": [str(d) for d in sys.modules[name + ".core.retarget"].builtin_preset_dirs()],
}
import addon_utils
addon_utils.disable(name, default_set=True)
report["after_disable"] = hasattr(bpy.types, "EXOMNI_PT_main") or hasattr(bpy.types.Scene, "exomni")
print("REPORT" + json.dumps(report))
"""


@pytest.mark.blender
def test_blender_installs_and_enables_the_zip_in_a_temporary_user_repository(built, tmp_path):
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("the bpy module is not installed")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}  # keep the real user config clean
    result = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, str(built), str(tmp_path / "repo")],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert report["result"] == ["FINISHED"] and report["enabled"] and report["panel"]
    assert report["generate"] == "EXOMNI_OT_generate"
    assert report["prefs_url"] == "http://127.0.0.1:8765"
    # Every module imports inside Blender's extension namespace (relative imports only).
    wanted = {"core.take", "core.request", "remote.client", "blender.keying", "ui"}
    assert wanted <= set(report["imported"]), wanted - set(report["imported"])
    assert len(report["imported"]) >= 25
    assert report["preset_dirs"] == [str((tmp_path / "repo" / "exomni_blender" / "presets").resolve())]
    assert not report["after_disable"]
    assert (tmp_path / "repo" / "exomni_blender" / MANIFEST_NAME).is_file()


def test_command_line_builds_the_zip(tmp_path, capsys):
    assert cli_main(["build-extension", "--out", str(tmp_path), "--no-wheels"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.is_file() and printed.parent == tmp_path and printed.name == "exomni_blender-0.1.0.zip"


@pytest.mark.parametrize("edit, complaint", [
    (lambda m: m.update(tagline="A tagline that goes on and on well past what Blender lets a tagline be"), "64"),
    (lambda m: m.update(tagline="Talking heads."), "punctuation"),
    (lambda m: m["permissions"].update(telepathy="reads minds"), "telepathy"),
    (lambda m: m.pop("maintainer"), "'maintainer' is missing"),
    (lambda m: m.update(id="exomni-blender"), "'id'"),
    (lambda m: m.update(version="one"), "'version'"),
    (lambda m: m.update(license=["GPL"]), "SPDX"),
])
def test_bad_manifest_fields_fail_the_build_with_what_to_fix(tmp_path, edit, complaint):
    manifest = tomllib.loads(MANIFEST_SOURCE.read_text())
    edit(manifest)
    path = tmp_path / "addon_manifest.toml"
    path.write_text(_toml(manifest))
    with pytest.raises(ExtensionBuildError, match=complaint):
        build_extension(tmp_path / "out", manifest_path=path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_manifest_source_reads_clean():
    assert read_manifest()["id"] == "exomni_blender"


def _toml(data: dict) -> str:
    lines, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    for key, table in tables:
        lines += [f"[{key}]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _bl_pkg_cli() -> Path:
    """Blender's extension command-line tool, shipped inside the bpy module (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the bpy module is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    found = sorted(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        pytest.skip(f"Blender's extension tool not found under {root}")
    return found[-1]


# -- the Linux x64 zip, with the embedded engine's wheels ------------------------------------------------

@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory) -> Path:
    # Beside pytest's numbered temporary folders, so it outlives them: pip downloads the wheels once.
    cache = tmp_path_factory.getbasetemp().parent / "exomni-extension-wheels"
    try:
        return build_extension(tmp_path_factory.mktemp("linux"), platform="linux-x64", wheel_cache=cache)
    except ExtensionBuildError as exc:
        if "PyPI" in str(exc):
            pytest.skip(f"the wheels cannot be downloaded here: {exc}")
        raise


def _wheel_tags(name: str):
    python, abi, platform = Path(name).stem.split("-")[-3:]
    return python.split("."), abi, platform


def test_the_linux_zip_carries_the_engines_wheels_for_both_pythons(linux_zip):
    assert linux_zip.name == "exomni_blender-0.1.0-linux_x64.zip"
    with zipfile.ZipFile(linux_zip) as zf:
        manifest = tomllib.loads(zf.read(MANIFEST_NAME).decode())
        names = set(zf.namelist())
    assert manifest["platforms"] == ["linux-x64"]
    wheels = [w[len("./"):] for w in manifest["wheels"]]
    assert wheels and set(wheels) <= names and {n for n in names if n.endswith(".whl")} == set(wheels)
    by_project = {}
    for wheel in wheels:
        by_project.setdefault(Path(wheel).name.split("-")[0].lower(), []).append(wheel)
    assert "numpy" not in by_project  # Blender ships numpy; a second copy would shadow it
    assert not any(p.startswith("scipy") for p in by_project)
    for python in ("311", "313"):  # Blender 4.2-5.0 and 5.1+
        for project in ("espeakng_loader", "pocketsphinx", "soundfile", "cffi"):
            fits = [w for w in by_project.get(project, [])
                    if any(t in (f"cp{python}", "py3") for t in _wheel_tags(w)[0])
                    and ("x86_64" in _wheel_tags(w)[2] or _wheel_tags(w)[2] == "any")]
            assert fits, f"no {project} wheel for Python {python[0]}.{python[1:]} on Linux x64 in {wheels}"
    assert set(ENGINE_ESSENTIAL) <= names


def test_blenders_own_validator_accepts_the_linux_zip(linux_zip):
    result = subprocess.run([sys.executable, str(_bl_pkg_cli()), "validate", str(linux_zip)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "Success" in result.stdout, result.stdout + result.stderr


EMBEDDED_TAKE_SCRIPT = r"""
import json, sys
import bpy
zip_path, repo_dir = sys.argv[1], sys.argv[2]
prefs = bpy.context.preferences
assert not bpy.app.online_access  # the bpy module starts offline: nothing may need the network
repo = prefs.extensions.repos.new(name="ExOmni test", module="exomni_test", custom_directory=repo_dir, source="USER")
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=repo.module, enable_on_install=True)
name = "bl_ext.exomni_test.exomni_blender"
addon_prefs = prefs.addons[name].preferences
addon_prefs.backend_url = "http://127.0.0.1:9"  # nothing listens there: a take that needed a server would fail
jobs = sys.modules[name + ".ui.jobs"]
bpy.ops.wm.read_homefile(use_empty=True)
bpy.ops.exomni.add_demo_head()
scene = bpy.context.scene
scene.exomni.text = "Hello from inside Blender."
bpy.ops.exomni.generate()
job = jobs.wait(jobs.latest("generate"), timeout=120)
head = scene.exomni.target
action = head.data.shape_keys.animation_data.action
strips = [s for s in (scene.sequence_editor.sequences_all if hasattr(scene.sequence_editor, "sequences_all")
                      else scene.sequence_editor.strips_all) if s.type == "SOUND"]
print("REPORT" + json.dumps({
    "installed": sorted(result), "state": job.state, "message": job.message,
    "modules": (job.result or {}).get("modules"), "takes": len(scene.exomni.takes),
    "frames": scene.exomni.takes[0].frames if len(scene.exomni.takes) else 0,
    "action": action.name if action else None, "sound_strips": len(strips),
    "site_packages": [p for p in sys.path if p.endswith("site-packages") and ".local" in p],
}))
"""


@pytest.mark.blender
@pytest.mark.slow
def test_the_installed_linux_zip_makes_a_take_with_no_server_and_no_network(linux_zip, tmp_path):
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("the bpy module is not installed")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    result = subprocess.run([sys.executable, "-c", EMBEDDED_TAKE_SCRIPT, str(linux_zip), str(tmp_path / "repo")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT"):])
    assert report["installed"] == ["FINISHED"]
    assert report["state"] == "done", report["message"]
    assert report["takes"] == 1 and report["frames"] > 20 and report["action"] and report["sound_strips"] == 1
    # The take came from the installed extension: its engine code, its core, and eSpeak NG from its wheel
    # as Blender installed it into the user's extension site-packages, not from this test's environment.
    installed = (tmp_path / "repo" / "exomni_blender").resolve()
    modules = {k: Path(v).resolve() for k, v in report["modules"].items()}
    assert modules["backend"].is_relative_to(installed / ENGINE_DIR)
    assert modules["exomni_blender"] == installed / "__init__.py"
    wheels_site = (tmp_path / "user").resolve()
    assert modules["espeakng_loader"].is_relative_to(wheels_site), modules["espeakng_loader"]
    assert ".local" in modules["espeakng_loader"].parts and "site-packages" in modules["espeakng_loader"].parts
