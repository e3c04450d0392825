"""What the service worker precaches, and the version that names its cache."""

import hashlib
from functools import cache
from pathlib import Path

# Files the phone needs to open the app with no network. Vendor files are added from the
# git-ignored static/vendor folder the setup command fills from the npm registry.
# Every ES module under static/js is part of the shell (a domain's page script too), except
# the service worker itself, which the browser fetches from /sw.js.
SHELL_FILES = (
    "css/app.css",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "icons/icon-maskable-512.png",
)
VENDOR_FILES = (
    "vendor/htmx.min.js",
    "vendor/idb.js",
    "vendor/signature_pad.js",
    "vendor/jsQR.js",
)


@cache
def shell_assets(static_folder: str, release: str = "") -> tuple[tuple[str, ...], str]:
    """(URLs to precache, version).

    The version is a hash of every static file, so it changes whenever any of them does: it
    names the service worker's cache and is the path prefix of static URLs
    (``/static/v/<version>/js/app.js``), which can then be cached for a year. Relative imports
    between ES modules stay inside that prefix, so no build step has to rewrite them.
    """
    root = Path(static_folder)
    digest = hashlib.sha256(release.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    version = digest.hexdigest()[:12]
    scripts = sorted(f"js/{p.name}" for p in (root / "js").glob("*.js") if p.name != "sw.js")
    names = (*SHELL_FILES, *scripts, *VENDOR_FILES)
    urls = tuple(versioned_url(version, n) for n in names if (root / n).exists())
    return urls, version


def versioned_url(version: str, filename: str) -> str:
    return f"/static/v/{version}/{filename}"
