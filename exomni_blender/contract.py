"""The HTTP contract between the extension and the backend: the one definition of both sides.

Plain constants and small pure functions only (no requests, no FastAPI) so the add-on's client
and the server share them without either importing the other's stack.
"""

API_PREFIX = "/v1"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
TOKEN_HEADER = "Authorization"  # "Bearer <token>" when the server was started with a token

# Endpoints (format with the ids).
HEALTH = API_PREFIX + "/health"
ENGINES = API_PREFIX + "/engines"
TAKES = API_PREFIX + "/takes"  # POST: start a take job
JOB = API_PREFIX + "/jobs/{job_id}"  # GET: status, DELETE: cancel
TAKE = API_PREFIX + "/takes/{take_id}"  # GET: take.json
TAKE_BLENDSHAPES = API_PREFIX + "/takes/{take_id}/blendshapes.json"
TAKE_AUDIO = API_PREFIX + "/takes/{take_id}/audio.wav"
DIALOGUE_PLAN = API_PREFIX + "/dialogue/plan"  # POST: a script in, its lines' take requests out

# Job states.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
JOB_STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINISHED_STATES = (DONE, FAILED, CANCELLED)

# Modes an engine may offer.
MODES = ("say", "chat", "lipsync")
DEFAULT_ENGINE = "phonetic"

# Request limits and defaults (checked by the server, mirrored in the panel's fields).
MAX_TEXT_CHARS = 2000
MIN_FPS, MAX_FPS, DEFAULT_FPS = 1.0, 240.0, 30.0
MAX_SEED = 2**31 - 1
MAX_AUDIO_BYTES = 50 * 1024 * 1024
MAX_AUDIO_SECONDS = 600.0

# Request fields of POST /v1/takes (JSON body), with their defaults.
TAKE_REQUEST_DEFAULTS = {
    "engine": DEFAULT_ENGINE,
    "mode": "say",
    "text": "",
    "fps": DEFAULT_FPS,
    "voice": None,
    "seed": 0,
    "rate": 1.0,  # speaking-rate multiplier
    "pitch": 1.0,  # pitch multiplier
    "mouth_only": False,  # no blinks, brows or gaze
    "options": {},  # engine-specific extras
}

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


def job_path(job_id: str) -> str:
    return JOB.format(job_id=job_id)


def take_path(take_id: str, what: str = "") -> str:
    base = TAKE.format(take_id=take_id)
    return base + ("/" + what if what else "")
