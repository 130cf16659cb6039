"""Neural models served by the backend.

`exomni`: the Ex-Omni model (LLM, speech encoder, speech generator, blendshape generator).
`audio_decoder`: speech units to waveform (its own package).
Everything here needs torch; import these packages only where a model is actually used.
"""
