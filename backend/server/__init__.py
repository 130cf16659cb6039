"""The HTTP service: FastAPI app (app.py), request validation (requests.py)."""
