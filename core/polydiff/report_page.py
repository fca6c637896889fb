"""One HTML page that shows what a command wrote: pictures, clips and sounds, with scores beside them.

``polydiff demo`` writes ``index.html`` in its output directory, so a person opens one file in a
browser instead of hunting through folders. The page links the files by relative path (move the
directory and it still works), embeds nothing and loads nothing from the network.

>>> page = ReportPage("polydiff demo")                                  # doctest: +SKIP
>>> page.section("image", [Path("runs/demo/image/samples.png")], scores={"all": 0.9})  # doctest: +SKIP
>>> page.write(Path("runs/demo/index.html"))                            # doctest: +SKIP
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IMAGES = {".png", ".gif", ".jpg", ".jpeg", ".webp", ".svg"}
SOUNDS = {".wav", ".flac", ".ogg", ".mp3"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.note { color: #555; } .items { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; }
figure { margin: 0; max-width: 100%; } figcaption { font-size: 0.85em; color: #555; word-break: break-all; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 0.2em 0.8em; border: 1px solid #ddd; }
th { background: #f6f6f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


@dataclass
class Section:
    """A heading, a note, a table of scores and the files to show under it."""

    title: str
    files: list[Path]
    scores: dict[str, float | str] = field(default_factory=dict)
    note: str = ""


class ReportPage:
    """Collects sections, then writes a self-contained ``index.html``."""

    def __init__(self, title: str, intro: str = ""):
        self.title, self.intro = title, intro
        self.sections: list[Section] = []

    def section(
        self,
        title: str,
        files: Sequence[str | Path],
        *,
        scores: Mapping[str, float | str] | None = None,
        note: str = "",
    ) -> Section:
        """Add a section; files that do not exist are left out when the page is written."""
        sec = Section(title, [Path(f) for f in files], dict(scores or {}), note)
        self.sections.append(sec)
        return sec

    def write(self, path: str | Path) -> Path:
        """Write the page to ``path`` (links are relative to its directory); returns ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        if self.intro:
            body.append(f"<p class='note'>{html.escape(self.intro)}</p>")
        for sec in self.sections:
            body.append(f"<h2>{html.escape(sec.title)}</h2>")
            if sec.note:
                body.append(f"<p class='note'>{html.escape(sec.note)}</p>")
            if sec.scores:
                body.append(_scores_table(sec.scores))
            items = [_item(f, path.parent) for f in sec.files if f.is_file()]
            body.append("<div class='items'>" + "".join(items) + "</div>")
        page = (
            "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body)
            + "\n</body></html>\n"
        )
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
        return path


def _scores_table(scores: Mapping[str, float | str]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td class='num'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in scores.items()
    )
    return f"<table>{rows}</table>"


def _fmt(value: float | str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _item(file: Path, root: Path) -> str:
    rel = html.escape(Path(os.path.relpath(file.resolve(), root.resolve())).as_posix(), quote=True)
    caption = f"<figcaption>{html.escape(file.name)}</figcaption>"
    suffix = file.suffix.lower()
    if suffix in IMAGES:
        media = f"<a href='{rel}'><img src='{rel}' alt='{html.escape(file.name, quote=True)}'></a>"
    elif suffix in SOUNDS:
        media = f"<audio controls preload='none' src='{rel}'></audio>"
    else:
        media = f"<a href='{rel}'>{html.escape(file.name)}</a>"
    return f"<figure>{media}{caption}</figure>"
