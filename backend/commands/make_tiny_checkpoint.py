"""`exomni make-tiny-checkpoint DIR`: a small random Ex-Omni checkpoint in the released layout."""

from ._common import model_libraries_installed


def register(sub):
    p = sub.add_parser("make-tiny-checkpoint",
                       help="write a small random Ex-Omni checkpoint (released layout) for tests and trials")
    p.add_argument("folder", metavar="DIR", help="folder to write (created if needed; existing files are replaced)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    if not model_libraries_installed():
        return 1
    from ..models.exomni.loading import CheckpointError, load_exomni
    from ..models.exomni.tiny import make_tiny_checkpoint

    folder = make_tiny_checkpoint(args.folder, seed=args.seed)
    try:
        loaded = load_exomni(folder, device="cpu")
    except CheckpointError as exc:  # would be a bug here; say so plainly
        print(f"wrote {folder}, but it does not load: {exc}")
        return 1
    size = sum(p.stat().st_size for p in loaded.info.shards)
    print(f"wrote {folder}: {len(loaded.info.shards)} shards, {size / 1024:.0f} KiB; loads with "
          f"{loaded.report.summary()}")
    print(f"use it with: EXOMNI_CHECKPOINT={folder} (or --exomni-checkpoint {folder})")
    return 0
