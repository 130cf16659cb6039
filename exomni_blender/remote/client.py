"""The add-on's HTTP client for the Ex-Omni backend.

Every path and job state comes from `contract`, the one definition the server shares. Every failure
becomes a `BackendError` whose message tells the animator what to do; nothing else escapes. Calls
block, so the add-on makes them on a worker thread (see `jobs`), never on Blender's main thread.
"""

import ipaddress
import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..core import contract as C
from ..core.request import DEFAULTS
from ..core.files import atomic_write
from ..core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON, Take
from ..core.errors import ExOmniError

START_HINT = "Start the backend from the add-on preferences or run `exomni serve`."
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0
# The server checks a recording before it answers (long MP3s go through ffmpeg), so allow it longer.
UPLOAD_READ_TIMEOUT = 180.0
UPLOAD_CHUNK = 1 << 16
CLIENT_NAME = "exomni-blender"
AUDIO_CONTENT_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
                       ".opus": "audio/ogg", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac",
                       ".aif": "audio/aiff", ".aiff": "audio/aiff"}


class BackendError(ExOmniError):
    """A backend call that did not work; str() is a message a person can act on."""

    code = "backend"


class OnlineAccessDisabled(BackendError):
    code = "online_access_disabled"


class BackendUnreachable(BackendError):
    code = "unreachable"


class UploadCancelled(BackendError):
    """The caller asked to stop while a recording was being uploaded."""

    code = "cancelled"


class ApiError(BackendError):
    """The server answered with an error body {"error": {"code", "message"}} or a bad status."""

    def __init__(self, message: str, code: str = C.E_INTERNAL, status: int = 500):
        super().__init__(message)
        self.code = code
        self.status = status


# Whether the network may be used, and why not. Outside Blender always yes; inside, the UI layer
# installs Blender's "Allow Online Access" switch here when it registers (this layer never sees bpy).
_gate = {"allowed": lambda: True, "why_not": lambda: "Online access is off."}


def set_network_gate(allowed, why_not) -> None:
    """Every call checks `allowed()` first and raises OnlineAccessDisabled(`why_not()`) when it is false."""
    _gate["allowed"], _gate["why_not"] = allowed, why_not


def reset_network_gate() -> None:
    set_network_gate(lambda: True, lambda: "Online access is off.")


def online_access_allowed() -> bool:
    return bool(_gate["allowed"]())


def online_access_message() -> str:
    return _gate["why_not"]()


def normalize_url(url: str) -> str:
    """The backend's base URL without a trailing slash; a clear error for anything not http(s)."""
    url = (url or "").strip()
    if not url:
        return C.DEFAULT_URL
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"Backend URL '{url}' is not an http(s) address like {C.DEFAULT_URL}; "
                           "fix it in the add-on preferences.")
    try:
        parts.port  # raises on a port that is not a number
    except ValueError:
        raise BackendError(f"Backend URL '{url}' has an invalid port; use one like {C.DEFAULT_URL}.") from None
    return url


def host_and_port(url: str) -> tuple:
    parts = urlsplit(normalize_url(url))
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def is_local_url(url: str) -> bool:
    """The URL names this machine: `localhost` or a loopback address, parsed (127.0.0.1.example.com is not)."""
    host, _ = host_and_port(url)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """One backend at `base_url`. Not shared between threads: each job makes its own."""

    def __init__(self, base_url: str = C.DEFAULT_URL, token: str = "", *,
                 connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.base_url = normalize_url(base_url)
        self.token = (token or "").strip()
        self.timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        # A system-wide proxy must not swallow calls to a backend on this machine.
        self._session.trust_env = not is_local_url(self.base_url)

    def close(self) -> None:
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- endpoints -------------------------------------------------------------------------
    def health(self) -> dict:
        return self._json("GET", C.HEALTH)

    def engines(self) -> list:
        body = self._json("GET", C.ENGINES)
        engines = body.get("engines") if isinstance(body, dict) else None
        if not isinstance(engines, list):
            raise ApiError(f"The backend at {self.base_url} sent an engine list this add-on cannot read; "
                           "update the add-on and the backend to the same version.", C.E_INTERNAL, 200)
        return engines

    def submit_take(self, *, audio=None, audio_filename: str = "", on_upload=None, should_cancel=None,
                    **fields) -> dict:
        """Start a take job; returns {"job_id", "state"}. Unknown fields are refused here, not sent.

        With `audio` (a path), the recording goes as the multipart file field 'audio', read from disk
        in chunks while it is sent, and the fields as one 'request' JSON field. `audio_filename` is the
        name the server sees (its messages use it; its extension picks the decoder). `on_upload(sent,
        total)` follows the upload; `should_cancel()` turning true stops it (UploadCancelled).
        """
        unknown = sorted(set(fields) - set(DEFAULTS))
        if unknown:  # a programming error of the caller: never sent, so the server never sees a guess
            raise BackendError(f"Unknown take request field(s): {', '.join(unknown)}; "
                               f"known: {', '.join(DEFAULTS)}.")
        body = {**{k: v for k, v in DEFAULTS.items() if k in fields}, **fields}
        if audio is None:
            job = self._json("POST", C.TAKES, json=body)
        else:
            stream = MultipartUpload({"request": json.dumps(body)}, "audio", audio,
                                     audio_filename or Path(audio).name, on_progress=on_upload,
                                     should_cancel=should_cancel)
            try:
                job = self._json("POST", C.TAKES, data=stream, headers={"Content-Type": stream.content_type},
                                 timeout=(self.timeout[0], max(self.timeout[1], UPLOAD_READ_TIMEOUT)))
            finally:
                stream.close()
        if not isinstance(job, dict) or "job_id" not in job:
            raise ApiError(f"The backend at {self.base_url} did not return a job id; "
                           "update the add-on and the backend to the same version.", C.E_INTERNAL, 200)
        return job

    def job(self, job_id: str) -> dict:
        return self._json("GET", C.job_path(job_id))

    def cancel(self, job_id: str) -> dict:
        return self._json("DELETE", C.job_path(job_id))

    def delete_take(self, take_id: str) -> dict:
        """Remove a finished take from the backend's store."""
        return self._json("DELETE", C.take_path(take_id))

    def plan_dialogue(self, body: dict) -> dict:
        """Each line of a dialogue script with its head, take request and cache key (the server parses the script)."""
        return self._json("POST", C.DIALOGUE_PLAN, json=body)

    def wait(self, job_id: str, on_update=None, should_cancel=None, interval: float = 0.15,
             timeout: float = 600.0) -> dict:
        """Poll a job until it is finished. Cancels it on the server when `should_cancel()` turns true.

        `on_update(status)` sees every status polled. Returns the final status.
        """
        deadline = time.monotonic() + timeout
        cancel_sent = False
        while True:
            if should_cancel is not None and should_cancel() and not cancel_sent:
                cancel_sent = True
                try:
                    status = self.cancel(job_id)
                except ApiError:  # e.g. it finished a moment ago: its state says what happened
                    status = self.job(job_id)
            else:
                status = self.job(job_id)
            if on_update is not None:
                on_update(status)
            if status.get("state") in C.FINISHED_STATES:
                return status
            if status.get("state") not in C.JOB_STATES:
                raise ApiError(f"The backend reported an unknown job state {status.get('state')!r}; "
                               "update the add-on and the backend to the same version.", C.E_INTERNAL, 200)
            if time.monotonic() > deadline:
                raise BackendError(f"Job {job_id} did not finish within {timeout:.0f} s; "
                                   "check the backend's console, or cancel and try a shorter line.")
            time.sleep(interval)

    def download_take(self, take_id: str, folder) -> Path:
        """Fetch a finished take's three files into `folder` (written atomically) and return it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        info = self._json("GET", C.take_path(take_id))
        atomic_write(folder / TAKE_JSON, json.dumps(info, indent=2).encode("utf-8"))
        atomic_write(folder / BLENDSHAPES_JSON, self._bytes(C.take_path(take_id, BLENDSHAPES_JSON)))
        has_audio = info.get("has_audio", True) if isinstance(info, dict) else True
        if has_audio:
            atomic_write(folder / AUDIO_WAV, self._bytes(C.take_path(take_id, AUDIO_WAV)))
        elif (folder / AUDIO_WAV).exists():  # a take without sound has no audio.wav; an older one is not its
            (folder / AUDIO_WAV).unlink()
        return folder

    def fetch_take(self, take_id: str, folder) -> Take:
        return Take.load(self.download_take(take_id, folder))

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, headers=None, timeout=None, **kwargs) -> requests.Response:
        if not online_access_allowed():
            raise OnlineAccessDisabled(online_access_message())
        # The client header is what lets the server tell this client from a web page's forged post.
        headers = {"Accept": "application/json", C.CLIENT_HEADER: CLIENT_NAME, **(headers or {})}
        if self.token:  # any UTF-8 token: sent as bytes (http.client would refuse non-Latin-1 text)
            headers[C.TOKEN_HEADER] = f"Bearer {self.token}".encode("utf-8")
        url = self.base_url + path
        timeout = timeout or self.timeout
        try:
            response = self._session.request(method, url, headers=headers, timeout=timeout, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise BackendUnreachable(f"The Ex-Omni backend at {self.base_url} did not answer within "
                                     f"{self.timeout[0]:.0f} s. {START_HINT}") from None
        except requests.exceptions.ConnectionError:
            raise BackendUnreachable(f"Cannot reach the Ex-Omni backend at {self.base_url}. {START_HINT}") from None
        except requests.exceptions.Timeout:
            raise BackendUnreachable(f"The Ex-Omni backend at {self.base_url} stopped answering "
                                     f"({method} {path} took over {timeout[1]:.0f} s); check its console.") from None
        except requests.exceptions.RequestException as exc:
            raise BackendError(f"Request to {url} failed: {exc}") from None
        if response.status_code >= 400:
            raise _api_error(response, self.base_url)
        return response

    def _json(self, method: str, path: str, **kwargs):
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"The server at {self.base_url} answered {path} with something that is not JSON; "
                           "is the backend URL pointing at the Ex-Omni backend?", C.E_INTERNAL,
                           response.status_code) from None

    def _bytes(self, path: str) -> bytes:
        return self._request("GET", path).content


def _api_error(response: requests.Response, base_url: str) -> ApiError:
    code, message = None, None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            code = body["error"].get("code")
            message = body["error"].get("message")
    except ValueError:
        pass
    status = response.status_code
    if status == 429 or code == C.E_BUSY:
        wait = response.headers.get("Retry-After", "")
        return ApiError(f"{message or 'The backend is busy.'}" + (f" (retry in {wait} s)" if wait.isdigit() else ""),
                        code or C.E_BUSY, status)
    if status == 401 or code == C.E_UNAUTHORIZED:
        hint = "Set the backend's token in the add-on preferences (the one `exomni serve --token` was given)."
        return ApiError(f"{message or 'The backend refused the request (unauthorized).'} {hint}",
                        code or C.E_UNAUTHORIZED, status)
    if message:
        return ApiError(str(message), str(code or C.E_INTERNAL), status)
    text = (response.text or "").strip().replace("\n", " ")[:200]
    return ApiError(f"The server at {base_url} answered HTTP {status} {response.reason or ''}".rstrip()
                    + (f": {text}" if text else "") + ". Is the backend URL pointing at the Ex-Omni backend?",
                    C.E_INTERNAL, status)


class MultipartUpload:
    """A multipart/form-data body of text fields and one file, read from disk chunk by chunk as it is sent.

    requests would read a file given in `files=` whole into memory; handed this object as `data=`,
    it sends it as a stream with a Content-Length (from `len()`), so the server can refuse an
    oversized upload before reading it.
    """

    def __init__(self, fields: dict, file_field: str, path, filename: str, on_progress=None,
                 should_cancel=None, chunk: int = UPLOAD_CHUNK):
        self.path = Path(path)
        self.file_size = self.path.stat().st_size
        self.boundary = "exomni-" + uuid.uuid4().hex
        self._chunk = chunk
        self._on_progress = on_progress
        self._should_cancel = should_cancel
        head = b"".join(self._part_header(name, content=str(value)) for name, value in fields.items())
        suffix = Path(filename).suffix.lower()
        head += (f"--{self.boundary}\r\n"
                 f'Content-Disposition: form-data; name="{file_field}"; filename="{_quoted(filename)}"\r\n'
                 f"Content-Type: {AUDIO_CONTENT_TYPES.get(suffix, 'application/octet-stream')}\r\n\r\n"
                 ).encode("utf-8")
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self._length = len(self._head) + self.file_size + len(self._tail)
        self._sent = 0
        self._file = None
        self._file_left = self.file_size

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _part_header(self, name: str, content: str) -> bytes:
        return (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"{_quoted(name)}\"\r\n\r\n"
                f"{content}\r\n").encode("utf-8")

    def __len__(self) -> int:
        return self._length

    def __iter__(self):
        while True:
            block = self.read(self._chunk)
            if not block:
                return
            yield block

    def read(self, size: int = -1) -> bytes:
        if self._should_cancel is not None and self._should_cancel():
            raise UploadCancelled("The upload was cancelled.")
        size = self._chunk if size is None or size < 0 else max(1, size)
        if self._sent < len(self._head):
            block = self._head[self._sent:self._sent + size]
        elif self._file_left > 0:
            if self._file is None:
                self._file = open(self.path, "rb")
            block = self._file.read(min(size, self._file_left))
            if not block:
                raise BackendError(f"{self.path.name} got shorter while it was being uploaded; "
                                   "wait until it is fully written, then generate again.")
            self._file_left -= len(block)
        else:
            offset = self._sent - len(self._head) - self.file_size
            block = self._tail[offset:offset + size]
        self._sent += len(block)
        if block and self._on_progress is not None:
            self._on_progress(self._sent, self._length)
        return block

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _quoted(value: str) -> str:
    # What browsers send: quotes escaped, line breaks dropped (they would end the header).
    return str(value).replace('"', "%22").replace("\r", " ").replace("\n", " ")


