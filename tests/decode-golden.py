#!/usr/bin/env python3
"""Golden output of the decoder: every frame corpus in every rendering, pinned by digest.

Runs `bench-decode --dump` (a fixed clock, so nothing in the output varies from run to run)
over each frame file under tests/vectors and the fuzz-frame regression inputs, in each
rendering, and compares the SHA-256 of the output with tests/decode-golden.txt. A change
to what the decoder renders fails here; if the change is intended, rerun with --update
and commit the new digests together with the change (and say why in the commit).

usage: decode-golden.py BENCH_DECODE VECTORS_DIR SOURCE_DIR [--update] [--show CORPUS MODE]
"""
import glob
import hashlib
import os
import subprocess
import sys

MODES = {
    "standard": [],
    "osprey": ["--osprey"],
    "jetstream": ["--payload-format", "jetstream"],
    "osprey-jetstream": ["--osprey", "--payload-format", "jetstream"],
}


def corpora(vectors, src):
    """(name, bench-decode arguments) for every frame corpus, in a stable order."""
    out = []
    for path in sorted(glob.glob(os.path.join(vectors, "**", "*.bin"), recursive=True)):
        out.append((os.path.relpath(path, vectors), [path]))
    raw = sorted(glob.glob(os.path.join(src, "fuzz", "regressions", "fuzz-frame", "*")))
    if raw:
        out.append(("fuzz/regressions/fuzz-frame", ["--raw"] + raw))
    return out


def render(bench, mode, args):
    return subprocess.run([bench, "--dump"] + MODES[mode] + args, check=True,
                          stdout=subprocess.PIPE).stdout


def main():
    bench, vectors, src = sys.argv[1], sys.argv[2], sys.argv[3]
    golden = os.path.join(src, "tests", "decode-golden.txt")
    if "--show" in sys.argv:
        i = sys.argv.index("--show")
        name, mode = sys.argv[i + 1], sys.argv[i + 2]
        sys.stdout.buffer.write(render(bench, mode, dict(corpora(vectors, src))[name]))
        return 0
    lines = []
    for name, args in corpora(vectors, src):
        for mode in MODES:
            out = render(bench, mode, args)
            lines.append("%s  %s %s %d\n" % (hashlib.sha256(out).hexdigest(), name, mode,
                                               out.count(b"\n")))
    if "--update" in sys.argv:
        with open(golden, "w") as f:
            f.write("# sha256  corpus rendering lines (tests/decode-golden.py --update)\n")
            f.writelines(lines)
        return 0
    with open(golden) as f:
        want = [l for l in f if not l.startswith("#")]
    if want == lines:
        print("%d corpus/rendering pairs identical" % len(lines))
        return 0
    for line in sorted(set(want) ^ set(lines)):
        print(("expected: " if line in want else "got:      ") + line, end="")
    print("decoder output changed; see --show CORPUS MODE, or --update if intended")
    return 1


if __name__ == "__main__":
    sys.exit(main())
