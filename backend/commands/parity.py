"""`exomni parity DIR`: compare the Ex-Omni parts with the reference fixtures under DIR."""


def register(sub):
    p = sub.add_parser("parity", help="check the Ex-Omni model against reference fixtures (exit 1 on any failure)")
    p.add_argument("folder", metavar="DIR", help="a folder holding fixture folders (blendshape_generator, "
                                                 "speech_generator, speech_encoder_projector, end_to_end, audio_decoder)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1, as the fixtures were made)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import torch
    except ImportError:
        print("parity needs torch and transformers: pip install 'exomni-blender[model]'")
        return 1
    from ..parity import run_parity

    torch.set_num_threads(max(1, args.threads))
    ok = run_parity(args.folder, out=lambda line: print(line, flush=True))
    print("all outputs within tolerance" if ok else "parity FAILED")
    return 0 if ok else 1
