"""``report.html``: the report's Markdown rendered to one self-contained HTML file (figures as base64 PNG).

Only the Markdown that :mod:`vnflab.report.build` writes is supported: ATX headings, paragraphs, ``- ``
bullet lists, pipe tables (``\\|`` escapes a pipe), images on a line of their own, inline code,
``**bold**`` and a paragraph wrapped in ``_..._``. A table of contents of the level-2 and level-3 headings follows
the title. No JavaScript, no external resources (the contents link only within the page); identical Markdown and
figures give identical bytes.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

_IMAGE_RE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_HEADING_RE = re.compile(r"^(?P<level>#{1,6}) (?P<text>.*)$")
_CODE_RE = re.compile(r"`([^`]+)`")
_BOLD_RE = re.compile(r"\*\*(.+?)\*\*")
_MIME = {".png": "image/png", ".svg": "image/svg+xml"}

_STYLE = """\
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:75em;margin:2em auto;padding:0 1em;
line-height:1.45;color:#1b1b1b}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em;display:block;overflow-x:auto}
th,td{border:1px solid #c8c8c8;padding:0.25em 0.5em;vertical-align:top}
th{background:#f0f0f0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f4f4f4;padding:0 0.2em;border-radius:3px}
img{max-width:100%;height:auto;border:1px solid #e0e0e0}
h1,h2,h3,h4{margin-top:1.4em}
nav.toc{border:1px solid #e0e0e0;background:#fafafa;padding:0.4em 1em;font-size:0.9em}
nav.toc ul{margin:0.2em 0;padding-left:1.2em}
"""

#: Heading levels listed in the table of contents.
_TOC_LEVELS = (2, 3)


def inline(text: str) -> str:
    """Escape ``text`` and render inline code and bold."""
    parts = _CODE_RE.split(text)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"<code>{html.escape(part, quote=False)}</code>")
        else:
            out.append(_BOLD_RE.sub(r"<strong>\1</strong>", html.escape(part, quote=False)))
    return "".join(out)


def split_row(line: str) -> list[str]:
    """Cells of a pipe-table row (``\\|`` is a literal pipe)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _table(lines: list[str]) -> str:
    header = split_row(lines[0])
    aligns = ["num" if cell.endswith(":") else "" for cell in split_row(lines[1])] if len(lines) > 1 else []
    aligns += [""] * (len(header) - len(aligns))

    def cls(index: int) -> str:
        return f' class="{aligns[index]}"' if index < len(aligns) and aligns[index] else ""

    out = ["<table>", "<thead><tr>" + "".join(f"<th{cls(i)}>{inline(c)}</th>" for i, c in enumerate(header))
           + "</tr></thead>", "<tbody>"]
    for line in lines[2:]:
        out.append("<tr>" + "".join(f"<td{cls(i)}>{inline(c)}</td>" for i, c in enumerate(split_row(line)))
                   + "</tr>")
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _image(alt: str, src: str, base_dir: Path) -> str:
    path = base_dir / src
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return f"<p>[missing figure: {html.escape(src)}]</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'
            f"<figcaption>{html.escape(alt)} (<code>{html.escape(src)}</code>)</figcaption></figure>")


def _slug(text: str, used: dict[str, int]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    used[base] = used.get(base, 0) + 1
    return base if used[base] == 1 else f"{base}-{used[base]}"


def table_of_contents(headings: list[tuple[int, str, str]]) -> str:
    """``<nav>`` of (level, anchor, inline HTML) headings: level 3 nested under the level 2 before it."""
    if not headings:
        return ""
    out = ['<nav class="toc" aria-label="Contents">', "<p><strong>Contents</strong></p>", "<ul>"]
    open_sublist = False
    for position, (level, anchor, text) in enumerate(headings):
        if level == _TOC_LEVELS[-1] and not open_sublist and position > 0:
            out[-1] = out[-1].removesuffix("</li>")
            out.append("<ul>")
            open_sublist = True
        elif level == _TOC_LEVELS[0] and open_sublist:
            out.append("</ul></li>")
            open_sublist = False
        out.append(f'<li><a href="#{anchor}">{text}</a></li>')
    if open_sublist:
        out.append("</ul></li>")
    out.append("</ul>\n</nav>")
    return "\n".join(out)


def markdown_to_html(markdown: str, base_dir: Path, title: str) -> str:
    """The whole HTML document for ``markdown``; images are read from ``base_dir`` and embedded."""
    body: list[str] = []
    lines = markdown.splitlines()
    used: dict[str, int] = {}
    headings: list[tuple[int, str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        if heading := _HEADING_RE.match(line):
            level = len(heading["level"])
            text = heading["text"]
            anchor = _slug(_CODE_RE.sub(r"\1", text), used)
            body.append(f'<h{level} id="{anchor}">{inline(text)}</h{level}>')
            if level in _TOC_LEVELS:
                headings.append((level, anchor, inline(text)))
            index += 1
            continue
        if image := _IMAGE_RE.match(line.strip()):
            body.append(_image(image["alt"], image["src"], base_dir))
            index += 1
            continue
        block: list[str] = []
        if line.startswith("|"):
            while index < len(lines) and lines[index].startswith("|"):
                block.append(lines[index])
                index += 1
            body.append(_table(block))
            continue
        if line.startswith("- "):
            items: list[str] = []
            while index < len(lines) and (lines[index].startswith("- ") or lines[index].startswith("  ")):
                if lines[index].startswith("- "):
                    items.append(lines[index][2:])
                else:
                    items[-1] += " " + lines[index].strip()
                index += 1
            body.append("<ul>\n" + "\n".join(f"<li>{inline(item)}</li>" for item in items) + "\n</ul>")
            continue
        while index < len(lines) and lines[index].strip() and not (
            lines[index].startswith(("|", "- ", "#")) or _IMAGE_RE.match(lines[index].strip())
        ):
            block.append(lines[index].strip())
            index += 1
        text = " ".join(block)
        if len(text) > 2 and text.startswith("_") and text.endswith("_"):
            body.append(f"<p><em>{inline(text[1:-1])}</em></p>")
        else:
            body.append(f"<p>{inline(text)}</p>")
    contents = table_of_contents(headings)
    if contents:
        after_title = next((i + 1 for i, element in enumerate(body) if element.startswith("<h1")), 0)
        body.insert(after_title, contents)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_html(markdown: str, base_dir: Path, path: Path, title: str) -> Path:
    """Write the self-contained HTML of ``markdown`` to ``path``."""
    path.write_text(markdown_to_html(markdown, base_dir, title), encoding="utf-8", newline="\n")
    return path
