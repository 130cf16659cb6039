"""The phonetic engine: eSpeak NG speech and phoneme timings, a coarticulated viseme model, face layers.

Public pieces other code uses:
  espeak.synthesize(text, voice, rate, pitch, seed) -> Synthesis (audio, sample_rate, phonemes, words)
  espeak.available_voices(), espeak.available_variants(), espeak.phonemize(text, voice)
  curves.curves_from_phonemes(phonemes, duration, fps, seed, mouth_only, emphasis) -> [frames, 52]
  visemes.lip_gap(weights), visemes.lips_closed(weights)
  engine.PhoneticEngine
  lipsync.lipsync_take(request, progress) -> Take: a recording (and its transcript) in
  align.align(samples16k, text, letter_to_sound, progress) -> PhoneAlignment (pocketsphinx)
  formants.formant_tracks(samples, rate) -> (times, F1, F2); opening_scale / rounding_scale per frame
"""
