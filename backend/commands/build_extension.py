"""`exomni build-extension --out DIR`: the installable Blender extension zips, one per platform."""

from ._common import fail


def register(sub):
    from ..extension_build import PLATFORMS

    p = sub.add_parser("build-extension", help="build the Blender extension zips, one per platform with the embedded "
                       "engine's wheels (install one in Blender with Edit > Preferences > Get Extensions > "
                       "Install from Disk)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write <id>-<version>-<platform>.zip into")
    p.add_argument("--platform", action="append", choices=sorted(PLATFORMS), metavar="PLATFORM",
                   help=f"only this platform (repeatable; one of {', '.join(PLATFORMS)}); default: all of them")
    p.add_argument("--no-wheels", action="store_true",
                   help="one zip without the embedded engine's wheels, <id>-<version>.zip (takes then come from "
                        "the backend server); downloads nothing")
    p.add_argument("--wheel-cache", metavar="DIR",
                   help="where downloaded wheels are kept between builds (default: DIR/.wheels)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..extension_build import PLATFORMS, ExtensionBuildError, build_extension, build_extensions

    try:
        if args.no_wheels:
            paths = [build_extension(args.out)]
        else:
            paths = build_extensions(args.out, args.platform or tuple(PLATFORMS), wheel_cache=args.wheel_cache)
    except ExtensionBuildError as exc:
        return fail(str(exc))
    for path in paths:
        print(path)
    return 0
