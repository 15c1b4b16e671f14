"""The report's markdown as one self-contained HTML page: inline CSS, a table of contents,
images by relative path (each linked to its SVG where one exists), pipe tables as HTML tables.

It reads the subset of markdown the sections write: ``#``-``###`` headings, paragraphs,
``- `` lists, pipe tables, a line that is one ``![alt](src)`` image, and inline
```code```, ``**bold**`` and ``[text](href)``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a;
       max-width: 1180px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { font-size: 1.8em; margin-bottom: 0.2em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2.2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
nav { background: #f5f7fa; border: 1px solid #dde3ea; padding: 0.6em 1.2em; margin: 1em 0 2em; }
nav ol { margin: 0.2em 0; padding-left: 1.4em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.8em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
tr:nth-child(even) td { background: #fafbfc; }
code { font-size: 0.9em; background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
"""
IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
BOLD = re.compile(r"\*\*(.+?)\*\*")


def inline(text: str) -> str:
    """Escape ``text`` and render its code spans, bold and links."""
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # inside a code span
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            escaped = BOLD.sub(r"<strong>\1</strong>", html.escape(part, quote=False))
            out.append(LINK.sub(lambda m: f'<a href="{html.escape(m[2])}">{m[1]}</a>', escaped))
    return "".join(out)


def slug(title: str, taken: set[str]) -> str:
    """A unique anchor id for a heading."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    th = "".join(f"<th>{inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>\n" for r in body)
    return f"<table>\n<thead><tr>{th}</tr></thead>\n<tbody>\n{trs}</tbody>\n</table>"


def _figure(alt: str, src: str, folder: Path) -> str:
    img = f'<img src="{html.escape(src)}" alt="{html.escape(alt)}" loading="lazy">'
    svg = Path(src).with_suffix(".svg")
    if src.endswith(".png") and (folder / svg).exists():
        img = f'<a href="{html.escape(str(svg))}">{img}</a>'
    return f"<figure>{img}<figcaption>{html.escape(alt)}</figcaption></figure>"


def page_body(markdown: str, folder: Path) -> tuple[str, str]:
    """The page title and the HTML body of ``markdown``, with a table of contents of its
    ``##`` and ``###`` headings before the first ``##``; images are looked up in ``folder``
    for their SVG twins."""
    lines = markdown.split("\n")
    blocks: list[str] = []
    toc: list[tuple[str, str, list[tuple[str, str]]]] = []
    taken: set[str] = set()
    title, toc_at = "report", None
    i = 0
    while i < len(lines):
        line = lines[i]
        kind = _kind(line)
        if not line.strip():
            i += 1
        elif kind == "heading":
            m = re.match(r"^(#{1,3}) (.*)$", line)
            level, text = len(m[1]), m[2].strip()
            if level == 1:
                title = text
            anchor = slug(text, taken)
            if level == 2:
                toc_at = len(blocks) if toc_at is None else toc_at
                toc.append((anchor, text, []))
            elif level == 3 and toc:
                toc[-1][2].append((anchor, text))
            blocks.append(f'<h{level} id="{anchor}">{inline(text)}</h{level}>')
            i += 1
        elif kind == "image":
            m = IMAGE.match(line.strip())
            blocks.append(_figure(m[1], m[2], folder))
            i += 1
        else:
            run = [line]
            i += 1
            while i < len(lines) and lines[i].strip() and _kind(lines[i]) == kind:
                run.append(lines[i])
                i += 1
            if kind == "table":
                blocks.append(_table(run))
            elif kind == "list":
                blocks.append("<ul>\n" + "".join(f"<li>{inline(r[2:])}</li>\n" for r in run) + "</ul>")
            else:
                blocks.append(f"<p>{inline(' '.join(run))}</p>")
    if toc:
        blocks.insert(len(blocks) if toc_at is None else toc_at, _toc(toc))
    return title, "\n".join(blocks)


def _kind(line: str) -> str:
    if line.startswith("|"):
        return "table"
    if line.startswith("- "):
        return "list"
    if re.match(r"^#{1,3} ", line):
        return "heading"
    if IMAGE.match(line.strip()):
        return "image"
    return "text"


def _toc(entries: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    """Nested ordered lists: the ``##`` headings, each with its ``###`` headings."""
    items = []
    for anchor, text, subs in entries:
        inner = "".join(f'<li><a href="#{a}">{inline(t)}</a></li>' for a, t in subs)
        items.append(
            f'<li><a href="#{anchor}">{inline(text)}</a>' + (f"<ol>{inner}</ol>" if subs else "") + "</li>"
        )
    return "<nav><strong>Contents</strong>\n<ol>\n" + "\n".join(items) + "\n</ol></nav>"


def write_html(path: Path, markdown: str) -> Path:
    """Write ``markdown`` as a self-contained page at ``path``; return the path."""
    title, body = page_body(markdown, path.parent)
    path.write_text(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    return path
