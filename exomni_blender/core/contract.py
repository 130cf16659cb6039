"""The HTTP contract between the extension and the backend: the one definition of both sides.

Plain constants and small pure functions only (no requests, no FastAPI) so the add-on's client
and the server share them without either importing the other's stack.
"""

import re

API_PREFIX = "/v1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
TOKEN_HEADER = "Authorization"  # "Bearer <token>" when the server was started with a token
# Sent by the add-on, the CLI and documented curl calls on every request. A web page cannot add a
# custom header to a cross-origin request without a CORS preflight, which the server refuses, so a
# POST carrying it (or a JSON content type) cannot come from a page the animator happens to visit.
CLIENT_HEADER = "X-ExOmni-Client"
MAX_JSON_BYTES = 1 * 1024 * 1024  # a JSON request body; recordings over this go multipart

# Endpoints (format with the ids).
HEALTH = API_PREFIX + "/health"
ENGINES = API_PREFIX + "/engines"
TAKES = API_PREFIX + "/takes"  # POST: start a take job
JOB = API_PREFIX + "/jobs/{job_id}"  # GET: status, DELETE: cancel
TAKE = API_PREFIX + "/takes/{take_id}"  # GET: take.json, DELETE: remove the take
TAKE_BLENDSHAPES = API_PREFIX + "/takes/{take_id}/blendshapes.json"
TAKE_AUDIO = API_PREFIX + "/takes/{take_id}/audio.wav"
DIALOGUE_PLAN = API_PREFIX + "/dialogue/plan"  # POST: a script in, its lines' take requests out
JOB_STREAM = API_PREFIX + "/jobs/{job_id}/stream"  # GET: the job's output as it is made (below)

# Job states.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
JOB_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED_STATES = (DONE, FAILED, CANCELLED)

# Modes an engine may offer (the take request and its limits are defined in `request.py`).
MODES = ("say", "chat", "lipsync")
DEFAULT_ENGINE = "phonetic"
MAX_AUDIO_SECONDS = 600.0
# The upload cap follows from the length limit: the largest file that can hold MAX_AUDIO_SECONDS in a
# format people record in (uncompressed 96 kHz stereo 24-bit WAV), plus room for its headers and tags.
# Anything bigger is over the length limit whatever it holds; compressed files are far smaller.
MAX_AUDIO_BYTES = (int(MAX_AUDIO_SECONDS * 96_000 * 2 * 3) // 2**20 + 2) * 2**20  # whole MB: 331 MB

# Error codes in {"error": {"code", "message"}} bodies.
E_BAD_REQUEST = "bad_request"
E_EMPTY_TEXT = "empty_text"
E_TEXT_TOO_LONG = "text_too_long"
E_UNKNOWN_ENGINE = "unknown_engine"
E_UNKNOWN_MODE = "unknown_mode"
E_ENGINE_UNAVAILABLE = "engine_unavailable"
E_MALFORMED_JSON = "malformed_json"
E_NOT_FOUND = "not_found"
E_UNAUTHORIZED = "unauthorized"
E_BAD_AUDIO = "bad_audio"
E_TOO_LARGE = "too_large"
E_INTERNAL = "internal"
E_BAD_SCRIPT = "bad_script"  # a dialogue script that cannot be read
E_UNCAST = "uncast_characters"  # characters of a dialogue script with no head
E_FORBIDDEN = "forbidden"  # a foreign Host or Origin, or a refused CORS preflight
E_UNSUPPORTED_MEDIA = "unsupported_media_type"  # a POST a web page could forge (text/plain, a plain form)
E_BUSY = "busy"  # the queue is full: retry after the Retry-After header's seconds
E_STORE_FULL = "store_full"  # the disk under the take store is full
E_JOB_EXPIRED = "job_expired"  # an accepted job whose record aged out of the bounded history
E_TAKE_DAMAGED = "take_damaged"  # a take folder whose files cannot be read
E_TIMEOUT = "request_timeout"  # a request body stopped arriving: send it again, whole and at once
E_UNKNOWN_JOB = "unknown_job"  # a job id this server never issued (an expired one is E_JOB_EXPIRED)
E_STORE_READ_ONLY = "store_read_only"  # the take store cannot be written: make it writable or serve another
E_STORE_BUSY = "store_busy"  # another process holds the jobs database: retry, or stop the other server
E_STORE_CORRUPT = "store_corrupt"  # the jobs database is damaged: restart the server (it sets the file aside)

# One HTTP status per error code, wherever the error is raised.
STATUS = {
    E_BAD_REQUEST: 422, E_EMPTY_TEXT: 422, E_TEXT_TOO_LONG: 422, E_UNKNOWN_ENGINE: 422, E_UNKNOWN_MODE: 422,
    E_ENGINE_UNAVAILABLE: 503, E_MALFORMED_JSON: 400, E_NOT_FOUND: 404, E_UNAUTHORIZED: 401, E_BAD_AUDIO: 422,
    E_TOO_LARGE: 413, E_INTERNAL: 500, E_BAD_SCRIPT: 422, E_UNCAST: 422,
    E_FORBIDDEN: 403, E_UNSUPPORTED_MEDIA: 415, E_BUSY: 429, E_STORE_FULL: 507, E_JOB_EXPIRED: 410,
    E_TAKE_DAMAGED: 409, E_TIMEOUT: 408, E_UNKNOWN_JOB: 404, E_STORE_READ_ONLY: 507, E_STORE_BUSY: 503,
    E_STORE_CORRUPT: 500,
}


# -- the take stream: GET JOB_STREAM, server-sent events (text/event-stream) -----------------------
# Each event is `event: <name>` + `data: <one JSON object>`. A client that connects at any time first
# gets everything already made, then the rest as it comes; pieces are contiguous (no gap, no overlap):
# - STREAM_AUDIO {"start", "sample_rate", "count", "pcm16"}: samples [start, start+count) of the take's
#   audio as base64 of little-endian 16-bit PCM, the very samples its audio.wav stores. SSE is a text
#   transport, so binary goes base64. A `start` below what a client holds replaces from there on.
# - STREAM_FRAMES {"start", "fps", "count", "channels", "f32"}: rows [start, start+count) of the take's
#   weights, ARKit-52 order, as base64 of little-endian float32 [count x channels] holding exactly the
#   values its blendshapes.json stores (rounded to STREAM_DECIMALS).
# - STREAM_PROGRESS {"state", "progress", "message"} when they change.
# - STREAM_END: the job's final status (as GET JOB: state, take_id, error); the stream then closes.
# Both pieces carry "elapsed": seconds since the engine began the take (0 for pieces read from the store).
# A comment line (": alive") comes every STREAM_KEEPALIVE_S seconds, so a silent stream means a lost one.
STREAM_AUDIO, STREAM_FRAMES, STREAM_PROGRESS, STREAM_END = "audio", "frames", "progress", "end"
STREAM_DECIMALS = 5  # what the Audio2Face JSON keeps
STREAM_KEEPALIVE_S = 2.0


def job_stream_path(job_id: str) -> str:
    return JOB_STREAM.format(job_id=job_id)


def job_path(job_id: str) -> str:
    return JOB.format(job_id=job_id)


def take_path(take_id: str, what: str = "") -> str:
    base = TAKE.format(take_id=take_id)
    return base + ("/" + what if what else "")


# A take id names a folder on both sides (the store's and the add-on's take folders): letters,
# digits, '-' and '_', at most 64, never starting with '-' or '_' (so never an option or hidden).
TAKE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def is_take_id(text) -> bool:
    return isinstance(text, str) and TAKE_ID.match(text) is not None
