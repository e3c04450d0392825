"""What a phone downloads: the app shell and the pages a worker uses all day, gzip-compressed.

    .venv/bin/python bench/page_weight.py
    .venv/bin/python bench/page_weight.py --level 9     # gzip level (default 6)

Builds the app on a fresh SQLite database with the demo data (in-process, no server), signs in
as the demo courier and the demo guard, and fetches, as the browser would:
  * the app shell: the home page's HTML, every stylesheet and script it links, and every module
    those scripts import (followed transitively); target under 60 KB compressed;
  * everything the service worker precaches at install (``fieldapp.shell.pwa.shell_assets``:
    the CSS, every ``static/js`` module, the vendor files), for reference: the one-time
    download of an installed phone;
  * a courier's stop page (``/deliveries/stops/<id>``) and a guard's round page
    (``/patrols/duty``): the HTML alone, since the shell's CSS and JS are already cached;
    target under 15 KB compressed each.
Sizes are of the bodies as served, compressed here with gzip at ``--level`` (what a reverse
proxy with gzip on sends; the app does not compress itself).
"""

import argparse
import gzip
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FIELDAPP_INSTANCE", tempfile.mkdtemp(prefix="fieldapp-bench-weight-"))

SHELL_TARGET, PAGE_TARGET = 60 * 1024, 15 * 1024
LINKS = re.compile(
    r"""<(?:link[^>]+rel="?(?:stylesheet|modulepreload)"?[^>]*href|script[^>]+src)="([^"]+)\""""
)
IMPORTS = re.compile(
    r"""(?:\bimport\s*(?:[\w*{}\s,$]+\s*from\s*)?|\bimport\s*\(\s*|\bexport\s*[^;]*?from\s*)"""
    r"""["']([^"']+\.(?:js|mjs|css))["']"""
)
CSS_URLS = re.compile(r"""@import\s+(?:url\()?["']?([^"')]+)["']?\)?""")


def fetch(client, url: str) -> bytes:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code}")
    return response.get_data()


def shell_files(client, page_url: str, html: bytes) -> dict[str, bytes]:
    """The page's stylesheets and scripts, and what they import, by path."""
    files, queue = {}, []
    for ref in LINKS.findall(html.decode()):
        queue.append(urljoin(page_url, ref))
    while queue:
        url = queue.pop()
        path = urlsplit(url).path
        if path in files or not path.startswith("/"):
            continue
        body = fetch(client, path)
        files[path] = body
        text = body.decode(errors="replace")
        found = IMPORTS.findall(text) if path.endswith(".js") else CSS_URLS.findall(text)
        queue.extend(urljoin(url, ref) for ref in found)
    return files


def gz(data: bytes, level: int) -> int:
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def kb(n: int) -> str:
    return f"{n / 1024:6.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=6, help="gzip compression level")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from fieldapp import create_app
    from fieldapp.demo import seed_demo
    from fieldapp.extensions import db
    from tests.helpers import Client

    path = Path(os.environ["FIELDAPP_INSTANCE"]) / "weight.sqlite3"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "TESTING": True})
    with app.app_context():
        upgrade(revision="heads")
        seed_demo()
        db.session.commit()

    courier = Client(app.test_client())
    courier.login("courier1", "demo-2026")
    home = fetch(courier.raw, "/")
    shell = {"/ (HTML)": home, **shell_files(courier.raw, "http://localhost/", home)}

    from fieldapp.shell.pwa import shell_assets

    urls, _ = shell_assets(app.static_folder, app.config.get("RELEASE", ""))
    precache = {url: fetch(courier.raw, url) for url in urls if url.endswith((".js", ".css"))}
    icons = sum(len(fetch(courier.raw, url)) for url in urls if not url.endswith((".js", ".css")))

    today = fetch(courier.raw, "/deliveries/today").decode()
    stop_link = re.search(r'href="(/deliveries/stops/[^"/]+)"', today)
    pages = {}
    if stop_link:
        pages[f"stop page {stop_link.group(1)}"] = fetch(courier.raw, stop_link.group(1))
    guard = Client(app.test_client())
    guard.login("guard1", "demo-2026")
    pages["round page /patrols/duty"] = fetch(guard.raw, "/patrols/duty")

    print(f"page weight, gzip level {args.level} (raw -> compressed)")
    print("app shell (home page of a courier, and what it loads):")
    total_raw = total_gz = 0
    for name, body in shell.items():
        size = gz(body, args.level)
        total_raw += len(body)
        total_gz += size
        print(f"  {name:40s}{kb(len(body))} -> {kb(size)}")
    verdict = "ok" if total_gz < SHELL_TARGET else f"OVER by {kb(total_gz - SHELL_TARGET)}"
    print(f"  {'total':40s}{kb(total_raw)} -> {kb(total_gz)}   target < 60 KB: {verdict}")
    pre_raw = sum(len(b) for b in precache.values())
    pre_gz = sum(gz(b, args.level) for b in precache.values())
    print(
        f"service worker precache, for reference ({len(precache)} CSS and JS files: every"
        f" static/js module and the vendor files): {kb(pre_raw)} -> {kb(pre_gz)};"
        f" icons (PNG) {kb(icons)}"
    )
    print("pages (HTML only; the shell is cached):")
    if not stop_link:
        print("  stop page: no stop link on /deliveries/today (no route for today?)")
    for name, body in pages.items():
        size = gz(body, args.level)
        verdict = "ok" if size < PAGE_TARGET else f"OVER by {kb(size - PAGE_TARGET)}"
        print(f"  {name:40s}{kb(len(body))} -> {kb(size)}   target < 15 KB: {verdict}")
        extra = {
            path: data
            for path, data in shell_files(courier.raw, "http://localhost/", body).items()
            if path not in shell
        }
        if extra:
            names = ", ".join(p.rsplit("/", 1)[1] for p in extra)
            print(
                f"    + its own scripts, precached with the shell ({names}): "
                f"{kb(sum(len(b) for b in extra.values()))} -> "
                f"{kb(sum(gz(b, args.level) for b in extra.values()))}"
            )


if __name__ == "__main__":
    main()
