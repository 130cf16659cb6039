"""Flamenco jobs for dialogue renders, checked against Flamenco's published job-submission schema.

The schema (tests/data/flamenco/, with a note of its source) is the request body of
POST /api/v3/jobs in Flamenco Manager's OpenAPI description, plus the settings its stock
simple-blender-render job type declares. Submission goes over real HTTP to a stand-in Manager on
127.0.0.1 that accepts exactly what that schema accepts (a real Manager cannot run here).
"""

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from backend.dialogue import flamenco

DATA = Path(__file__).parent / "data" / "flamenco"
OPENAPI = json.loads((DATA / "flamenco-openapi-submitted-job.json").read_text())
JOB_TYPE = json.loads((DATA / "simple-blender-render-settings.json").read_text())


# -- a small validator for the OpenAPI 3.0 schema subset Flamenco's SubmittedJob uses ---------------

_TYPES = {"object": dict, "string": str, "array": list, "boolean": bool}


def _resolve(schema):
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/"), ref
        schema = OPENAPI["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def schema_errors(value, schema, where="job"):
    schema = _resolve(schema)
    errors = []
    for part in schema.get("allOf", []):
        errors += schema_errors(value, part, where)
    kind = schema.get("type")
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind:
        ok = isinstance(value, _TYPES[kind])
    else:
        ok = True
    if not ok:
        return errors + [f"{where}: expected {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if schema.get("format") == "uuid" and isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            errors.append(f"{where}: {value!r} is not a uuid")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing required {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors += schema_errors(item, props[name], f"{where}.{name}")
            elif extra is False:
                errors.append(f"{where}: unexpected {name!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    return errors


_SETTING_TYPES = {"string": (str,), "int32": (int,), "float": (int, float), "bool": (bool,)}


def job_errors(job):
    """The SubmittedJob schema, then the simple-blender-render job type's own settings."""
    body = OPENAPI["requestBody"]["content"]["application/json"]["schema"]
    errors = schema_errors(job, body)
    if job.get("type") != "simple-blender-render":
        return errors + [f"job type {job.get('type')!r}"]
    settings = job.get("settings", {})
    for spec in JOB_TYPE["settings"]:
        key = spec["key"]
        if key not in settings:
            if spec.get("required"):
                errors.append(f"settings: missing required {key!r}")
            continue
        value, types = settings[key], _SETTING_TYPES[spec["type"]]
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            errors.append(f"settings.{key}: expected {spec['type']}, got {type(value).__name__}")
    if settings.get("format") in JOB_TYPE["refused_formats"]:
        errors.append(f"settings.format {settings['format']!r} is refused by the job type")
    return errors


def _job(**kw):
    args = dict(name="Brick & Steel dialogue", blendfile="/farm/scenes/brick.blend", frame_start=1, frame_end=2000,
                fps=30.0, output_root="/farm/renders", metadata={"exomni.audio": "/farm/scenes/brick.wav",
                                                                  "exomni.lines": 24})
    args.update(kw)
    return flamenco.build_job(**args)


def test_the_validator_rejects_what_the_schema_rejects():
    good = _job()
    assert job_errors(good) == []
    for broken, fragment in (
        ({k: v for k, v in good.items() if k != "name"}, "missing required 'name'"),
        ({**good, "priority": "high"}, "expected integer"),
        ({**good, "metadata": {"lines": 24}}, "expected string"),
        ({**good, "worker_tag": "not-a-uuid"}, "not a uuid"),
        ({**good, "settings": {**good["settings"], "format": "FFMPEG"}}, "refused"),
        ({**good, "settings": {k: v for k, v in good["settings"].items() if k != "blendfile"}}, "'blendfile'"),
        ({**good, "settings": {**good["settings"], "chunk_size": 2.5}}, "chunk_size"),
    ):
        assert any(fragment in e for e in job_errors(broken)), (fragment, job_errors(broken))


def test_dialogue_job_fits_flamenco_schema():
    job = _job(chunk_size=25, priority=70)
    assert job_errors(job) == []
    s = job["settings"]
    assert job["type"] == "simple-blender-render" and job["priority"] == 70
    assert s["frames"] == "1-2000" and s["chunk_size"] == 25 and s["fps"] == 30.0
    assert s["format"] == "PNG" and s["image_file_extension"] == ".png"
    assert s["render_output_path"].startswith("/farm/renders/") and s["render_output_path"].endswith("/######")
    assert job["metadata"]["exomni.lines"] == "24" and job["metadata"]["exomni.audio"].endswith("brick.wav")
    assert job["submitter_platform"] in ("linux", "windows", "darwin", "freebsd", "openbsd")
    for bad in (dict(frame_end=0), dict(priority=101), dict(chunk_size=0), dict(image_format="FFMPEG")):
        with pytest.raises(ValueError):
            _job(**bad)


class _StandInManager(BaseHTTPRequestHandler):
    """POST /api/v3/jobs: 200 with a Job for a body the schema accepts, else Flamenco's Error body."""

    received = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != flamenco.SUBMIT_PATH:
            return self._send(404, {"code": 404, "message": "not found"})
        try:
            job = json.loads(body)
        except ValueError:
            return self._send(400, {"code": 400, "message": "invalid JSON"})
        errors = job_errors(job)
        if errors:
            return self._send(400, {"code": 400, "message": "; ".join(errors)})
        self.received.append(job)
        self._send(200, {**job, "id": str(uuid.uuid4()), "created": "2024-01-01T00:00:00Z",
                         "updated": "2024-01-01T00:00:00Z", "status": "queued", "activity": ""})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def manager():
    server = HTTPServer(("127.0.0.1", 0), _StandInManager)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _StandInManager.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_submit_over_http(manager):
    answer = flamenco.submit_job(_job(), manager + "/")
    assert uuid.UUID(answer["id"]) and answer["status"] == "queued"
    assert _StandInManager.received[0]["settings"]["frames"] == "1-2000"
    bad = {**_job(), "priority": "urgent"}
    with pytest.raises(flamenco.FlamencoError, match="HTTP 400.*expected integer"):
        flamenco.submit_job(bad, manager)


def test_unreachable_manager_says_what_to_do():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(flamenco.FlamencoError, match="--flamenco-job"):
        flamenco.submit_job(_job(), f"http://127.0.0.1:{port}", timeout=2)


def test_write_job(tmp_path):
    path = flamenco.write_job(_job(), tmp_path / "jobs" / "dialogue.json")
    assert job_errors(json.loads(path.read_text())) == []
