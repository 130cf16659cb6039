"""`exomni make-shapes FILE --object NAME --out OUT.blend`: the 52 ARKit shape keys made on a head.

FILE is a .blend, .glb, .gltf or .vrm; it is never changed. The Blender work runs as
`python -m exomni_blender.blender.make_shapes` in a child process (the backend never imports bpy),
started through `backend.blender_process`.
"""

import subprocess
import sys
from pathlib import Path

from .. import blender_process
from ._common import fail


def register(sub):
    p = sub.add_parser("make-shapes", help="make the 52 ARKit shape keys on a head that has none")
    p.add_argument("file", metavar="FILE", help="the head: .blend, .glb, .gltf or .vrm (never changed)")
    p.add_argument("--object", help="the head mesh's name (default: the one mesh named like head/face)")
    p.add_argument("--out", required=True, help="the .blend to write")
    p.add_argument("--replace", action="store_true",
                   help="also replace ARKit keys the head already had (default: keep them)")
    p.set_defaults(func=run)


def run(args) -> int:
    src, out = Path(args.file), Path(args.out)
    if not src.is_file():
        return fail(f"{src} does not exist: give the head's .blend, .glb, .gltf or .vrm file")
    if out.suffix.lower() != ".blend":
        return fail(f"--out {out}: the result is written as a .blend file")
    if out.resolve() == src.resolve():
        return fail("--out is the input file; the input is never changed, give another path")
    options = ["--object", args.object] if args.object else []
    if args.replace:
        options.append("--replace")
    try:
        cmd = blender_process.command("make_shapes", src, "--out", out, *options)
    except blender_process.BlenderMissing as exc:
        return fail(str(exc))
    try:
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    except OSError as exc:
        return fail(f"could not start {sys.executable}: {exc}")
    if done.returncode != 0:
        message = next((line[len("error: "):] for line in done.stderr.splitlines() if line.startswith("error: ")), None)
        return fail(message or (done.stderr.strip().splitlines() or ["Blender failed"])[-1])
    import json

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    failing = summary.get("failing", [])
    broken = sorted({f["shape"] for f in failing if f.get("kind") != "stretches"})
    stretched = sorted({f["shape"] for f in failing if f.get("kind") == "stretches"})
    print(f"made {len(summary['made'])} shape keys on {summary['object']}"
          + (f", kept {len(summary['kept'])} it had" if summary["kept"] else "")
          + (f"; estimated (check them): {', '.join(summary['estimated'])}" if summary["estimated"] else "")
          + (f"; {len(broken)} do not work: {', '.join(broken)}" if broken else "")
          + (f"; {len(stretched)} overstretch an edge: {', '.join(stretched)}" if stretched else "")
          + ("" if failing else "; all pass the check"))
    m = summary.get("measures", {})
    if "jawOpen lip opening" in m:
        print(f"check: jawOpen parts the lips {m['jawOpen lip opening'] * 1000:.1f} mm, mouthFunnel opens them "
              f"{m.get('mouthFunnel lip opening', 0.0) * 1000:.1f} mm, eyeBlink leaves "
              f"{m.get('eyeBlinkLeft lid gap', 0.0) * 1000:.1f} / {m.get('eyeBlinkRight lid gap', 0.0) * 1000:.1f} mm open")
    for f in failing:
        print(f"  fails: {f['text']}")
    print(f"wrote {summary['out']}")
    if broken:
        print("move the named landmarks (exomni_landmark empties in the .blend, or the panel's Find Landmarks) "
              "and make the shapes again", file=sys.stderr)
        return 1
    return 0
