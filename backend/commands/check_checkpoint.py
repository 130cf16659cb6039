"""`exomni check-checkpoint DIR`: what a downloaded Ex-Omni checkpoint will load, without loading it."""

from ._common import model_libraries_installed


def register(sub):
    p = sub.add_parser("check-checkpoint",
                       help="inspect a downloaded Ex-Omni checkpoint without loading weights: what will load, "
                            "what is missing and why, parameters and memory at bf16")
    p.add_argument("folder", metavar="DIR", help="the checkpoint folder (Tencent/Ex-Omni)")
    p.add_argument("--decoder", metavar="DIR", help="the audio decoder's folder (glm-4-voice-decoder) to check too")
    p.add_argument("--speech-encoder", metavar="DIR", help="the Whisper folder, if not found from config.json")
    p.add_argument("--speech-generator", metavar="DIR", help="the speech generator's Qwen3 folder, likewise")
    p.set_defaults(func=run)


def run(args) -> int:
    if not model_libraries_installed():
        return 1
    from ..models.exomni.inspection import check_checkpoint

    report = check_checkpoint(args.folder, args.decoder, args.speech_encoder, args.speech_generator)
    print(report.render())
    return 0 if report.loadable else 1
