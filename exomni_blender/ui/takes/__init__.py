"""The takes made in a scene: their list, re-keying, keying a take from disk."""
