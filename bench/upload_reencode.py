"""What cleaning an upload costs: decode, turn upright, re-encode (``fieldapp.sync.images``).

    .venv/bin/python bench/upload_reencode.py                 # every case, 7 runs each
    .venv/bin/python bench/upload_reencode.py --repeat 15 --case camera-12mp

An upload is cleaned once, in the request that brings its last piece (``files._finish``), after
its SHA-256 is checked. The inputs are made first; then each case runs in a process of its own
(so its peak memory is that of cleaning alone: the input's bytes and Pillow's work) and prints
the median and fastest time of ``images.clean`` over ``--repeat`` runs, the sizes before and
after, whether the bytes were re-encoded or kept, and the process's peak RSS. The time of the
SHA-256 of the same bytes is printed for scale. Inputs are made here with Pillow
(photo-like pictures: gradients, shapes, sensor noise; the camera EXIF of the tests):

  phone-1600        what our phones send: 1600x1200 canvas JPEG, quality 0.82, nothing in it
                    but Chrome's sRGB profile (re-encoded with its own quantisation tables)
  phone-1600-bare   the same without the profile: nothing to drop, kept byte for byte
  phone-1600-exif   the same photo from a client that kept the camera's EXIF
  camera-12mp       a camera JPEG, 4000x3000, quality 92: make, model, serial number, maker
                    note, thumbnail, XMP, comment, a wide-gamut ICC profile (converted to sRGB;
                    here the sRGB profile under another name, so the conversion really runs),
                    orientation 6 (turned upright)
  camera-12mp-srgb  the same with an sRGB profile (most Android phones): no conversion
  camera-12mp-noicc the same without a profile
  webp-12mp         the camera photo as WebP (quality 90) with the same metadata
  signature         a signature pad's PNG, 1080x360 (a 3x phone screen)
  limit-40mp        a bare JPEG of 40 megapixels (7300x5479): the largest accepted
  limit-40mp-camera the same with the camera's metadata, wide profile and orientation: the worst
"""

import argparse
import hashlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = [
    "phone-1600",
    "phone-1600-bare",
    "phone-1600-exif",
    "camera-12mp",
    "camera-12mp-srgb",
    "camera-12mp-noicc",
    "webp-12mp",
    "signature",
    "limit-40mp",
    "limit-40mp-camera",
]


def make(case: str) -> tuple[bytes, str]:
    from PIL import Image, ImageCms, ImageDraw

    from tests.unit.test_images import camera_exif, scene

    def save(picture, fmt="JPEG", **options) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, fmt, **options)
        return buffer.getvalue()

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    wide = srgb.replace("sRGB built-in".encode("utf-16-be"), "Wide built-in".encode("utf-16-be"))
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b"x" * 4000 + b"</x:xmpmeta>"
    camera = {"exif": camera_exif(), "xmp": xmp}
    if case == "phone-1600":
        return save(scene(1600, 1200), quality=82, icc_profile=srgb), "image/jpeg"
    if case == "phone-1600-bare":
        return save(scene(1600, 1200), quality=82), "image/jpeg"
    if case == "phone-1600-exif":
        return save(scene(1600, 1200), quality=82, exif=camera_exif()), "image/jpeg"
    if case == "camera-12mp":
        return save(scene(4000, 3000), quality=92, icc_profile=wide, comment=b"c", **camera), (
            "image/jpeg"
        )
    if case == "camera-12mp-srgb":
        return save(scene(4000, 3000), quality=92, icc_profile=srgb, **camera), "image/jpeg"
    if case == "camera-12mp-noicc":
        return save(scene(4000, 3000), quality=92, **camera), "image/jpeg"
    if case == "webp-12mp":
        return save(scene(4000, 3000), "WEBP", quality=90, icc_profile=wide, **camera), "image/webp"
    if case == "signature":
        pad = Image.new("RGBA", (1080, 360), (255, 255, 255, 255))
        points = [(40 + i * 50, 180 + (90 if i % 2 else -90) * ((i % 5) / 4)) for i in range(20)]
        ImageDraw.Draw(pad).line(points, fill="black", width=8, joint="curve")
        return save(pad, "PNG"), "image/png"
    if case == "limit-40mp":
        return save(scene(7300, 5479), quality=85), "image/jpeg"
    if case == "limit-40mp-camera":
        return save(scene(7300, 5479), quality=85, icc_profile=wide, **camera), "image/jpeg"
    raise SystemExit(f"unknown case {case}")


def run(case: str, source: Path, repeat: int) -> str:
    from fieldapp.sync import images

    data, content_type = source.read_bytes(), source.suffix[1:].replace("-", "/")
    times, hashing = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        hashing.append(time.perf_counter() - start)
        start = time.perf_counter()
        cleaned = images.clean(data, content_type)
        times.append(time.perf_counter() - start)
    # VmHWM is this program's own peak (ru_maxrss would carry the parent's over the exec).
    status = Path("/proc/self/status").read_text()
    peak_mb = int(status.split("VmHWM:")[1].split()[0]) / 1024
    return (
        f"{case:<18} {cleaned.width:>5}x{cleaned.height:<5} "
        f"{statistics.median(times) * 1000:>8.0f} {min(times) * 1000:>8.0f} "
        f"{statistics.median(hashing) * 1000:>7.1f} "
        f"{len(data) / 1024:>9.0f} {len(cleaned.data) / 1024:>9.0f} "
        f"{'re-encoded' if cleaned.reencoded else 'kept':>10} {peak_mb:>8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--case", choices=CASES, action="append")
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(run(args.one, args.input, args.repeat))
        return
    from PIL import __version__ as pillow

    print(f"Pillow {pillow}, Python {sys.version.split()[0]}, {args.repeat} runs per case")
    print(
        f"{'case':<18} {'stored':>11} {'median':>8} {'fastest':>8} {'sha256':>7} "
        f"{'in KiB':>9} {'out KiB':>9} {'bytes':>10} {'peak MB':>8}"
    )
    print(f"{'':<18} {'':>11} {'ms':>8} {'ms':>8} {'ms':>7}")
    with tempfile.TemporaryDirectory(prefix="fieldapp-bench-reencode-") as folder:
        inputs = {}
        for case in args.case or CASES:
            data, content_type = make(case)
            inputs[case] = Path(folder, f"{case}.{content_type.replace('/', '-')}")
            inputs[case].write_bytes(data)
        for case, source in inputs.items():
            child = [sys.executable, __file__, "--one", case, "--input", str(source)]
            child += ["--repeat", str(args.repeat)]
            answer = subprocess.run(child, check=True, capture_output=True, text=True)
            print(answer.stdout, end="")


if __name__ == "__main__":
    main()
