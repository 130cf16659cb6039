"""The HTTP service.

- app.py: `create_app`, the error replies (`{"error": {"code", "message"}}`, one status per code);
- guard.py: what a request must be to reach an endpoint (Host, Origin, token, forgeable posts, body caps);
- connections.py: the HTTP protocol `exomni serve` runs: header and idle deadlines, the connection limit;
- routes.py: the /v1 routers; schemas.py: their OpenAPI shapes (the core validator checks requests);
- requests.py: take requests off the wire (JSON, multipart, base64), recordings into the store;
- stream.py: a job's take stream as server-sent events (the events themselves: `backend.streaming`);
- launcher.py: `LocalServer`, the real server as a child process (the CLI's demo and the tests).

Jobs and their engine worker process live in `backend.jobs` and `backend.worker`; the worker never
imports this package.
"""
