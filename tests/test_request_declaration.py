"""The take request is declared once (`exomni_blender.core.request`: the fields' specs and OPTIONS); each
entry point is checked against that declaration here, so none can drift from it: the validator, the
OpenAPI schema the real server publishes, the command line's help and defaults, the HTTP submit, and the
engines that read the options. (The panel's properties: test_request_declaration_panel.py.)"""

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from exomni_blender.core import contract as C
from exomni_blender.core import request as R

REPO = Path(__file__).resolve().parents[1]
NUMERIC = [(n, s) for n, s in R.SPECS.items() if s.kind in (int, float)]
NUMERIC_OPTIONS = [(n, s) for n, s in R.OPTIONS.items() if s.kind in (int, float)]


def outside(spec):
    """A value just outside each end of the range."""
    step = 1 if spec.kind is int else 1e-3
    return [spec.low - step if not spec.low_open else spec.low, spec.high + step]


def inside(spec):
    low = spec.low + (1e-3 if spec.low_open else 0)
    return [spec.kind(low) if spec.kind is int else low, spec.high]


@pytest.mark.parametrize("name, spec", NUMERIC, ids=[n for n, _ in NUMERIC])
def test_the_validator_takes_each_field_to_its_declared_ends(name, spec):
    for value in inside(spec):
        assert getattr(R.validate({"text": "Hi.", name: value}), name) == value
    for value in outside(spec):
        with pytest.raises(R.RequestError) as caught:
            R.validate({"text": "Hi.", name: value})
        assert caught.value.code == C.E_BAD_REQUEST and spec.describe() in str(caught.value), str(caught.value)


@pytest.mark.parametrize("name, spec", NUMERIC_OPTIONS, ids=[n for n, _ in NUMERIC_OPTIONS])
def test_the_validator_takes_each_option_to_its_declared_ends(name, spec):
    for value in inside(spec):
        assert R.validate({"text": "Hi.", "options": {name: value}}).options[name] == value
    for value in outside(spec):
        with pytest.raises(R.RequestError, match=f"option {name} must be"):
            R.validate({"text": "Hi.", "options": {name: value}})


def test_the_options_the_engine_reads_are_the_declared_ones():
    """Every option name the model engine and the phonetic engine look up is declared (an option read
    but not declared could never arrive), and the exomni engine accepts each declared extreme."""
    pytest.importorskip("torch")
    from backend.engines.exomni import sampling_from_options

    read = set()
    for path in [REPO / "backend/engines/exomni.py", *sorted((REPO / "backend/engines/phonetic").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "option_value",) and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                read.add(node.args[1].value)
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get" and node.args
                    and isinstance(node.args[0], ast.Constant) and "options" in ast.unparse(node.func.value)):
                read.add(node.args[0].value)
    assert read and read <= set(R.OPTIONS), sorted(read - set(R.OPTIONS))
    for name, spec in NUMERIC_OPTIONS:
        if "exomni" in spec.engines:
            for value in inside(spec):
                sampling_from_options({name: value})


def test_the_openapi_schema_is_the_declaration(live_server):
    spec = requests.get(live_server + "/openapi.json", timeout=10).json()
    content = spec["paths"][C.TAKES]["post"]["requestBody"]["content"]
    schemas = spec.get("components", {}).get("schemas", {})

    def resolve(schema):
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    body = content["application/json"]["schema"]
    defs = body.get("$defs", {})
    props = body["properties"]
    assert set(R.FIELDS) <= set(props) and set(props) - set(R.FIELDS) == {"audio_base64", "audio_filename"}
    for name, field in R.SPECS.items():
        shown = props[name]
        if field.kind in (int, float):
            assert (shown["minimum"], shown["maximum"], shown["default"]) == (field.low, field.high, field.default)
        if field.choices:
            assert tuple(shown["enum"]) == tuple(field.choices) and shown["default"] == field.default
    options_ref = props["options"]["$ref"].rsplit("/", 1)[1]
    options = defs[options_ref]
    assert set(options["properties"]) == set(R.OPTIONS) and options["additionalProperties"] is False
    for name, option in R.OPTIONS.items():
        shown = options["properties"][name]["anyOf"][0]
        if option.kind in (int, float):
            low_key = "exclusiveMinimum" if option.low_open else "minimum"
            assert (shown[low_key], shown["maximum"]) == (option.low, option.high), name
    form = resolve(content["multipart/form-data"]["schema"])["properties"]
    assert {n for n, s in R.SPECS.items() if s.kind is not dict} <= set(form)


def _help(command="take") -> str:
    r = subprocess.run([sys.executable, "-m", "backend.cli", command, "--help"], capture_output=True, text=True,
                       cwd=REPO, timeout=60, env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())


def test_the_command_line_offers_every_field_with_its_declared_rule():
    text = _help()
    for name, spec in R.SPECS.items():
        if spec.kind is dict:
            continue
        assert f"--{name.replace('_', '-')}" in text, name
        if spec.describe() and spec.kind is not bool:
            assert spec.describe() in text, (name, spec.describe())
    for name, option in R.OPTIONS.items():
        assert f"{name}: {option.help}, {option.describe()}" in text, name


def test_the_command_line_sends_what_it_was_given(tmp_path):
    """Flags -> fields: every declared field arrives as given (the take's meta records the request)."""
    from backend.cli import build_parser
    from backend.commands.take import request_fields

    args = build_parser().parse_args(["take", "--text", "Hi.", "--rate", "1.5", "--seed", "7", "--mouth-only",
                                      "--option", "lead_in=0", "--option", "greedy=true", "--out", str(tmp_path)])
    fields = request_fields(args)
    assert set(fields) == set(R.FIELDS)
    assert (fields["rate"], fields["seed"], fields["mouth_only"]) == (1.5, 7, True)
    assert fields["options"] == {"lead_in": 0, "greedy": True}
    checked = R.validate(fields)
    assert checked.options == {"lead_in": 0.0, "greedy": True}


@pytest.mark.parametrize("body, words", [
    ({"text": "Hi.", "options": {"max_new_tokens": 3000, "top_p": 0}}, "max_new_tokens"),
    ({"text": "Hi.", "options": {"top_p": 0}}, "top_p must be a number above 0"),
    ({"text": "Hi.", "options": {"repetition_penalty": 9}}, "repetition_penalty"),
    ({"text": "Hi.", "voice": "en-us+nonexistentvariant"}, "unknown voice variant"),
])
def test_submit_refuses_what_an_engine_would_refuse(live_server, body, words):
    r = requests.post(live_server + C.TAKES, json=body, timeout=10)
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == C.E_BAD_REQUEST, r.text
    assert words in r.json()["error"]["message"]


@pytest.mark.parametrize("raw", ['{"text": "caf\\ud800"}', '{"\\udc00": 1, "text": "Hi."}',
                                 '{"text": "Hi.", "voice": "en\\ud800"}'])
def test_lone_surrogates_are_refused_at_submit(live_server, raw):
    r = requests.post(live_server + C.TAKES, data=raw.encode(), timeout=10,
                      headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == C.E_BAD_REQUEST, r.text
    json.dumps(r.json())  # the reply itself is valid JSON text


def test_only_the_settings_module_reads_the_environment():
    """os.environ / os.getenv are read in core/settings.py alone; elsewhere the environment is only
    copied whole into a child process's ({**os.environ, ...})."""
    readers = []
    for root in ("backend", "exomni_blender"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path == REPO / "exomni_blender/core/settings.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            copies = {id(n) for node in ast.walk(tree) if isinstance(node, ast.Dict)  # {**os.environ, ...}
                      for k, v in zip(node.keys, node.values) if k is None for n in ast.walk(v)}
            readers += [f"{path.relative_to(REPO).as_posix()}:{node.lineno}" for node in ast.walk(tree)
                        if isinstance(node, ast.Attribute) and ast.unparse(node) in ("os.environ", "os.getenv")
                        and id(node) not in copies]
    assert not readers, f"the environment is read outside core/settings.py: {readers}"


def test_settings_carry_what_the_environment_says(tmp_path):
    from exomni_blender.core.settings import Settings

    env = {"EXOMNI_CHECKPOINT": str(tmp_path), "EXOMNI_PRESETS": f"{tmp_path}/a{__import__('os').pathsep}/b",
           "BLENDER_USER_CONFIG": "/cfg", "EXOMNI_PORT": "9000"}
    s = Settings.from_env(env)
    assert (s.checkpoint, s.presets, s.blender_user_config, s.port) == (str(tmp_path), (f"{tmp_path}/a", "/b"),
                                                                         "/cfg", 9000)
    assert math.isclose(Settings.from_env({}).keep_job_days, 7.0)
