"""Build the API reference from the docstrings with pdoc, and fail on what would mislead.

    python docs/api_docs.py [--out out/docs]

Fails (exit 1, one line per problem) when pdoc warns (a module that does not import, a
docstring it cannot read) or when a generated page links to a page or an anchor that does
not exist (a broken cross-reference).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The public API (the names in ``hfstream.__all__``, on one page: pdoc makes pages for the
# submodules ``__all__`` names, and it names none), the modules of the extras that
# ``hfstream`` does not export (WebRTC, video), and the simulator.
MODULES = ["hfstream", "hfstream/transports/rtc.py", "hfstream/media/video.py", "sim"]
HREF = re.compile(r'href="([^"#:?]*)(?:#([^"]*))?"')
ID = re.compile(r'id="([^"]+)"')


def build(out: Path) -> list[str]:
    # Importing torch runs `lscpu`; pdoc blocks subprocesses during imports unless told.
    os.environ.setdefault("PDOC_ALLOW_EXEC", "1")
    sys.path.insert(0, str(ROOT))  # this checkout, not whichever copy is installed
    import pdoc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*(ROOT / m for m in MODULES), output_directory=out)
    return [
        f"pdoc: {w.message}"
        for w in caught
        if "pdoc" in w.filename or w.category.__module__.startswith("pdoc")
    ]


def broken_links(out: Path) -> list[str]:
    ids: dict[Path, set[str]] = {}
    problems = []
    pages = sorted(out.rglob("*.html"))
    for page in pages:
        ids[page.resolve()] = set(ID.findall(page.read_text()))
    for page in pages:
        for target, anchor in HREF.findall(page.read_text()):
            dest = (page.parent / target).resolve() if target else page.resolve()
            if dest.suffix != ".html":
                continue
            if dest not in ids:
                problems.append(f"{page.relative_to(out)}: link to missing page {target}")
            elif anchor and anchor not in ids[dest]:
                problems.append(f"{page.relative_to(out)}: link to missing #{anchor} in {target}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="out/docs")
    out = Path(p.parse_args(argv).out)
    problems = build(out) + broken_links(out)
    for line in problems:
        print(line, file=sys.stderr)
    pages = len(list(out.rglob("*.html")))
    print(f"API reference: {pages} pages in {out}/, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
