"""Generate: the panel's settings, the take request they make, and the job that makes and keys a take."""
