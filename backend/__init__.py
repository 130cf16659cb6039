"""Ex-Omni backend: engines, take store, job queue, HTTP service and the `exomni` command line."""

__version__ = "0.1.0"
