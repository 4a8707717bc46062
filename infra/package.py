#!/usr/bin/env python3
"""Build every drpilot function as a Lambda zip for the provided.al2023 runtime.

`make package` runs this: a release build, then per function a `bootstrap` binary in
dist/<function>.zip, after checking that the binary runs on the runtime's C library
(the highest GLIBC symbol version it needs is at most what Amazon Linux 2023 ships).
With cargo-lambda installed, `cargo lambda build --release --arm64 --output-format zip`
does the same for arm64 from any host.
"""
import argparse
import os
import re
import subprocess
import sys
import zipfile

# Amazon Linux 2023 (provided.al2023) ships glibc 2.34.
AL2023_GLIBC = (2, 34)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def functions():
    root = os.path.join(REPO, "functions")
    return sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "Cargo.toml")))


def glibc_needed(binary):
    """The highest GLIBC_x.y version among the binary's dynamic symbols (None if static)."""
    out = subprocess.run(["objdump", "-T", binary], check=True, capture_output=True, text=True).stdout
    versions = {tuple(int(p) for p in m) for m in re.findall(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", out)}
    return max(versions) if versions else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="Rust target triple (default: the host's)")
    parser.add_argument("--out", default=os.path.join(REPO, "dist"), help="where the zips go (default: dist/)")
    args = parser.parse_args()

    names = functions()
    cmd = ["cargo", "build", "--release"] + [a for n in names for a in ("-p", n)]
    if args.target:
        cmd += ["--target", args.target]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)

    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    release = os.path.join(target_dir, args.target or "", "release")
    os.makedirs(args.out, exist_ok=True)
    failed = False
    print(f"\n{'FUNCTION':<20} {'BINARY':>10} {'ZIP':>10}  GLIBC NEEDED (al2023 has {AL2023_GLIBC[0]}.{AL2023_GLIBC[1]})")
    for name in names:
        binary = os.path.join(release, name)
        needed = glibc_needed(binary)
        ok = needed is None or needed <= AL2023_GLIBC
        failed |= not ok
        zip_path = os.path.join(args.out, f"{name}.zip")
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (0o100755 & 0xFFFF) << 16  # executable regular file
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(binary, "rb") as src, zipfile.ZipFile(zip_path, "w") as z:
            z.writestr(info, src.read())
        shown = "static" if needed is None else f"{needed[0]}.{needed[1]}"
        print(f"{name:<20} {os.path.getsize(binary):>10,} {os.path.getsize(zip_path):>10,}  {shown}{'' if ok else '  TOO NEW: build with cargo-lambda (zig) or on Amazon Linux'}")
    if failed:
        sys.exit("package: a binary needs a newer glibc than provided.al2023 has")
    print(f"\nzips in {args.out}; infra/ reads them through var.package_dir")


if __name__ == "__main__":
    main()
