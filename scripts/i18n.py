"""Keep the zh_CN catalog in step with the code.

python scripts/i18n.py update          # extract strings, merge into translations/zh_Hans_CN
python scripts/i18n.py missing         # list strings without a Chinese translation
python scripts/i18n.py fill FILE.tsv   # add translations: one "English<TAB>中文" per line
"""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "translations" / "messages.pot"
PO = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
PYBABEL = str(Path(sys.executable).parent / "pybabel")


def update() -> None:
    subprocess.run(
        [
            PYBABEL,
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--no-location",
            "--sort-output",
            "--project",
            "fieldapp",
            "-o",
            str(POT),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [
            PYBABEL,
            "update",
            "-i",
            str(POT),
            "-d",
            "translations",
            "-l",
            "zh_Hans_CN",
            "--no-fuzzy-matching",
            "--ignore-obsolete",
        ],
        cwd=ROOT,
        check=True,
    )


def load():
    with PO.open("rb") as handle:
        return read_po(handle, locale="zh_Hans_CN")


def missing() -> list[str]:
    return [m.id for m in load() if m.id and not m.string]


def fill(tsv: Path) -> None:
    catalog = load()
    for line in tsv.read_text(encoding="utf-8").splitlines():
        if "\t" not in line:
            continue
        english, chinese = line.split("\t", 1)
        message = catalog.get(english)
        if message is not None:
            message.string = chinese
            message.flags.discard("fuzzy")
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=100)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "missing"
    if command == "update":
        update()
    elif command == "fill":
        fill(Path(sys.argv[2]))
    for msgid in missing():
        print("untranslated:", msgid)
