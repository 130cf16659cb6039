"""`exomni voices`: the voices the phonetic engine speaks with, and its variants."""


def register(sub):
    p = sub.add_parser("voices", help="list the phonetic engine's voices (for --voice)")
    p.add_argument("--variants", action="store_true", help="also list the variants (en-us+f3, ...)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engines.phonetic import espeak
    from ._common import fail

    ok, reason = espeak.is_available()
    if not ok:
        return fail(reason)
    voices = espeak.available_voices()
    print(f"{len(voices)} voices (default {espeak.DEFAULT_VOICE}); use one with --voice NAME:")
    for i in range(0, len(voices), 8):
        print("  " + "  ".join(f"{v:<12}" for v in voices[i:i + 8]).rstrip())
    if args.variants:
        variants = espeak.available_variants()
        print(f"\n{len(variants)} variants; add one to a voice as NAME+VARIANT (for example en-us+f3):")
        for i in range(0, len(variants), 8):
            print("  " + "  ".join(f"{v:<12}" for v in variants[i:i + 8]).rstrip())
    return 0
