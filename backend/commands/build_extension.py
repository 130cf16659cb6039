"""`exomni build-extension --out DIR`: the installable Blender extension zip."""

from ._common import fail


def register(sub):
    p = sub.add_parser("build-extension", help="build the Blender extension zip (install it in Blender with "
                       "Edit > Preferences > Get Extensions > Install from Disk)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write <id>-<version>.zip into")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..extension_build import ExtensionBuildError, build_extension

    try:
        path = build_extension(args.out)
    except ExtensionBuildError as exc:
        return fail(str(exc))
    print(path)
    return 0
