"""The add-on registers and unregisters cleanly in the real bpy, directly and through Blender's add-on system."""

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402  (comes with bpy)

import exomni_blender  # noqa: E402

pytestmark = pytest.mark.blender

OPERATORS = ("generate", "cancel", "refresh_engines", "start_backend", "stop_backend", "add_demo_head",
             "key_take_from_disk", "rekey_take", "jump_to_take", "remove_take", "change_mood", "toggle_part",
             "clear_take")
TYPES = ("EXOMNI_PT_main", "EXOMNI_PT_takes", "EXOMNI_UL_takes", "ExOmniSceneSettings", "ExOmniTakeItem",
         "ExOmniPreferences", *(f"EXOMNI_OT_{name}" for name in OPERATORS))


def ui_classes():
    from exomni_blender.ui import connection, preferences
    from exomni_blender.ui.generate import operators, panel, props
    from exomni_blender.ui.takes import operators as take_operators, panel as take_panel, props as take_props
    return [*take_props.CLASSES, *props.CLASSES, *preferences.CLASSES, *connection.CLASSES, *operators.CLASSES,
            *take_operators.CLASSES, *panel.CLASSES, *take_panel.CLASSES]


def registered_types():
    return {cls.__name__ for cls in ui_classes() if cls.is_registered}


def operator_exists(name: str) -> bool:
    try:
        getattr(bpy.ops.exomni, name).get_rna_type()
        return True
    except KeyError:
        return False


def assert_clean():
    assert registered_types() == set()
    assert not any(hasattr(bpy.types, name) for name in TYPES)
    assert not hasattr(bpy.types.Scene, "exomni")
    assert not any(operator_exists(name) for name in OPERATORS)


def test_register_twice_in_a_row_leaves_nothing_behind():
    assert_clean()
    for _ in range(2):
        exomni_blender.register()
        try:
            assert registered_types() == set(TYPES)
            assert hasattr(bpy.types, "EXOMNI_PT_main") and hasattr(bpy.types, "EXOMNI_UL_takes")
            assert all(operator_exists(name) for name in OPERATORS)
            assert bpy.types.EXOMNI_PT_main.bl_category == "Ex-Omni"
            assert bpy.types.EXOMNI_PT_main.bl_space_type == "VIEW_3D"
            settings = bpy.context.scene.exomni
            assert settings.engine == "phonetic" and settings.mode == "say" and settings.use_playhead
        finally:
            exomni_blender.unregister()
        assert_clean()


def test_enabled_through_blenders_addon_system_with_preferences():
    module = addon_utils.enable("exomni_blender", default_set=True, handle_error=lambda exc: (_ for _ in ()).throw(exc))
    try:
        assert module is not None
        prefs = bpy.context.preferences.addons["exomni_blender"].preferences
        from exomni_blender.core import contract
        from exomni_blender.ui import preferences
        assert type(prefs).bl_idname == "exomni_blender"
        assert prefs.backend_url == contract.DEFAULT_URL and prefs.backend_command == "exomni" and prefs.token == ""
        assert preferences.get() == prefs
    finally:
        addon_utils.disable("exomni_blender", default_set=True)
    assert "exomni_blender" not in bpy.context.preferences.addons
    assert_clean()


def test_preferences_fall_back_to_defaults_when_registered_by_a_script():
    exomni_blender.register()
    try:
        from exomni_blender.core import contract
        from exomni_blender.ui import preferences
        prefs = preferences.get()
        assert prefs.backend_url == contract.DEFAULT_URL and prefs.backend_command == "exomni"
    finally:
        exomni_blender.unregister()


def test_engine_list_follows_the_backend_and_keeps_the_choice_by_name():
    exomni_blender.register()
    try:
        from exomni_blender.ui.generate import props
        settings = bpy.context.scene.exomni
        props.set_engines([{"name": "phonetic", "modes": ["say", "lipsync"], "available": True},
                           {"name": "exomni", "modes": ["say", "chat"], "available": False, "reason": "no weights"}])
        settings.engine = "exomni"
        settings.mode = "chat"
        props.set_engines([{"name": "other", "modes": ["say"]}, *reversed(props.engines())])
        assert settings.engine == "exomni" and settings.mode == "chat"
        settings.engine = "phonetic"
        settings.mode = "lipsync"  # offered by this engine, and the panel uploads recordings
        assert settings.mode == "lipsync"
        with pytest.raises(TypeError):
            settings.mode = "chat"  # not offered by this engine
        with pytest.raises(TypeError):
            settings.engine = "gone"
    finally:
        exomni_blender.unregister()


def _loaded_after_importing(names: list) -> list:
    """Every module in sys.modules after a fresh Python (one where bpy can be imported) imports `names`."""
    import json
    import subprocess
    import sys
    code = ("import importlib, json, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_backend_package_never_pulls_in_the_ui():
    """Every backend module imported, with bpy there to be found: neither the add-on's ui or Blender
    layer nor bpy comes along; the core does (what the backend shares with the add-on)."""
    import pkgutil

    import backend
    names = [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
    assert len(names) > 30
    loaded = _loaded_after_importing(names)
    assert set(names) <= set(loaded)
    assert "exomni_blender.core.take" in loaded and "exomni_blender.core.contract" in loaded
    pulled = [m for m in loaded if m == "bpy" or m.startswith(("bpy.", "exomni_blender.ui", "exomni_blender.blender"))]
    assert not pulled, f"importing the backend loaded {pulled}"


def test_the_extension_imports_only_what_blender_ships():
    """Blender's Python has bpy and its companions (mathutils, bpy_extras, bmesh, gpu, aud), numpy, requests
    and the stdlib; never the backend."""
    import ast
    import sys
    from pathlib import Path
    allowed = {"bpy", "mathutils", "bpy_extras", "bmesh", "gpu", "aud", "numpy", "requests", *sys.stdlib_module_names}
    package = Path(exomni_blender.__file__).parent
    found = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    assert "bpy" in found and "numpy" in found  # the walk saw the imports
    assert {name: files for name, files in found.items() if name not in allowed} == {}


def test_every_button_and_icon_the_ui_draws_exists():
    """The panel and preferences only draw in a real window; check what they name against Blender."""
    import re
    from pathlib import Path
    package = Path(exomni_blender.__file__).parent
    source = "\n".join(p.read_text() for p in sorted((package / "ui").rglob("*.py")) if "dialogue" not in p.name)
    buttons = set(re.findall(r'operator\("exomni\.(\w+)"', source))
    icons = set(re.findall(r'icon="(\w+)"', source)) | set(re.findall(r'"(NONE|ERROR|INFO|CHECKMARK|BLANK1)"', source))
    valid_icons = set(bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys())
    exomni_blender.register()
    try:
        assert buttons and all(operator_exists(name) for name in buttons), buttons
        assert icons and icons <= valid_icons, icons - valid_icons
    finally:
        exomni_blender.unregister()


def test_file_and_folder_settings_take_paths_relative_to_the_blend():
    """From 4.5 a path property warns on "//" unless declared blend-relative (compat.path_options)."""
    import warnings
    exomni_blender.register()
    try:
        scene = bpy.context.scene
        item = scene.exomni.takes.add()
        targets = [(scene.exomni, "audio_file"), (item, "folder"), (scene.exomni_dialogue, "filepath"),
                   (scene.exomni_retarget, "preview_take")]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for owner, name in targets:
                setattr(owner, name, "//recordings/line.wav")
                assert getattr(owner, name) == "//recordings/line.wav"
        assert [str(w.message) for w in caught if "relative" in str(w.message)] == []
    finally:
        exomni_blender.unregister()
