"""Draw the app icons (192, 512, maskable 512) into static/icons. Run once; PNGs are committed."""

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = (11, 92, 173)
OUT = Path(__file__).resolve().parent.parent / "static" / "icons"


def draw(size: int, safe: float) -> Image.Image:
    """A white map pin with a tick on the brand colour; ``safe`` shrinks it for maskable icons."""
    image = Image.new("RGB", (size, size), BRAND)
    pen = ImageDraw.Draw(image)
    s = size * safe
    cx, cy = size / 2, size / 2 - s * 0.06
    r = s * 0.30
    pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill="white")
    pen.polygon(
        [(cx - r * 0.8, cy + r * 0.55), (cx + r * 0.8, cy + r * 0.55), (cx, cy + r * 1.75)],
        fill="white",
    )
    w = max(2, int(s * 0.05))
    pen.line(
        [(cx - r * 0.45, cy), (cx - r * 0.1, cy + r * 0.35), (cx + r * 0.5, cy - r * 0.35)],
        fill=BRAND,
        width=w,
        joint="curve",
    )
    return image


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    draw(192, 1.0).save(OUT / "icon-192.png", optimize=True)
    draw(512, 1.0).save(OUT / "icon-512.png", optimize=True)
    draw(512, 0.72).save(OUT / "icon-maskable-512.png", optimize=True)
