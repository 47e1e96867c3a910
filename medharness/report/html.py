"""Render a Document as one self-contained HTML file.

Everything inline (CSS, one small script, PNGs as data URLs) so the file opens anywhere with no
network. All text from runs is untrusted (questions, answers, model outputs, even model names)
and goes through `esc`. A Content-Security-Policy admits only this module's own script (by its
hash) and data: images, so even a mistake in escaping could not run injected code or load
anything from outside.
"""

from __future__ import annotations

import base64
import hashlib
import html

from medharness.report.document import (
    Bullets, Document, Figure, Heading, Link, Paragraph, Row, Score, Table, points, visible,
)

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1b1b1b}
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-top:1.4em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #d6d6d6;padding:.3em .55em;text-align:left;vertical-align:top}
th{background:#f3f4f6;cursor:pointer;white-space:nowrap}
caption{caption-side:top;text-align:left;color:#555;padding-bottom:.3em}
td:first-child{white-space:nowrap}td.score{white-space:nowrap;font-variant-numeric:tabular-nums}
.v{font-weight:600}.ci,.n{color:#666;font-size:.88em}
td.small{background:#fff6d6}.flag{color:#8a5a00;font-size:.8em;margin-left:.3em}
tr.reference td{background:#eef4ff;font-style:italic}
tr.random td{color:#666}
.badge{display:inline-block;font-size:.75em;border-radius:3px;padding:0 .35em;margin-left:.4em;font-style:normal}
.badge.reference{background:#3867d6;color:#fff}.badge.random{background:#888;color:#fff}
p.note{background:#f5f7fa;border-left:4px solid #8aa4c8;padding:.4em .7em}
p.warning{background:#fff3f0;border-left:4px solid #d9534f;padding:.4em .7em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
"""

# Sorts tables on a header click; records script errors and loaded images as attributes on
# <html>, which the browser test reads back from the rendered DOM.
SCRIPT = """
(function(){
var root=document.documentElement;var errors=0;
window.addEventListener('error',function(){errors+=1;root.setAttribute('data-script-errors',String(errors));});
function key(cell){var t=cell.textContent.trim();var f=parseFloat(t);return isNaN(f)?t.toLowerCase():f;}
function sortBy(table,col,th){var body=table.tBodies[0];if(!body)return;
var rows=Array.prototype.slice.call(body.rows);var dir=th.getAttribute('data-dir')==='asc'?-1:1;
rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
if(typeof x!==typeof y){x=String(x);y=String(y);}return x<y?-dir:x>y?dir:0;});
th.setAttribute('data-dir',dir===1?'asc':'desc');rows.forEach(function(r){body.appendChild(r);});}
document.addEventListener('DOMContentLoaded',function(){
var heads=document.querySelectorAll('table thead th');
Array.prototype.forEach.call(heads,function(th){th.addEventListener('click',function(){
sortBy(th.closest('table'),th.cellIndex,th);});});
root.setAttribute('data-script-errors',String(errors));});
window.addEventListener('load',function(){var ok=0;
Array.prototype.forEach.call(document.images,function(img){if(img.complete&&img.naturalWidth>0)ok+=1;});
root.setAttribute('data-images-loaded',String(ok));root.setAttribute('data-report-ready','1');});
})();
"""

SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{SCRIPT_HASH}'"


def esc(text: object) -> str:
    return html.escape(visible(str(text)), quote=True)


def render_html(doc: Document) -> str:
    body = "\n".join(render_block(block) for block in doc.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{esc(CSP)}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(doc.title)}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n"
        f"</head>\n<body>\n<h1>{esc(doc.title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def render_block(block: object) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 4)
        return f"<h{level}>{esc(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        return f"<p class=\"{block.kind}\">{esc(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{esc(block.caption)}</figcaption>" if block.caption else ""
        return f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{esc(block.alt)}\">{caption}</figure>"
    raise TypeError(f"unknown block {type(block).__name__}")


BADGES = {"reference": "published", "random": "random weights"}


def render_table(table: Table) -> str:
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    rows = "\n".join(render_row(row) for row in table.rows)
    return f"<div class=\"scroll\"><table>{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>"


def render_row(row: Row) -> str:
    cells = [render_cell(cell) for cell in row.cells]
    if row.kind in BADGES and cells:
        cells[0] = cells[0].replace("</td>", f"<span class=\"badge {row.kind}\">{BADGES[row.kind]}</span></td>", 1)
    return f"<tr class=\"{row.kind}\">" + "".join(cells) + "</tr>"


def render_cell(cell: object) -> str:
    if isinstance(cell, Link):
        return f"<td><a href=\"{esc(cell.href)}\">{esc(cell.text)}</a></td>"
    if not isinstance(cell, Score):
        return f"<td>{esc(cell)}</td>"
    if cell.value is None:
        inner = "<span class=\"v\">n/a</span>"
    else:
        inner = f"<span class=\"v\">{points(cell.value)}</span>"
        if cell.low is not None and cell.high is not None:
            inner += f" <span class=\"ci\">[{points(cell.low)}, {points(cell.high)}]</span>"
    if cell.n is not None:
        inner += f" <span class=\"n\">n={cell.n}</span>"
    if cell.small:
        inner += "<span class=\"flag\" title=\"fewer items than the task's minimum group size\">&#9873; small</span>"
    if cell.note:
        inner += f" <span class=\"n\">({esc(cell.note)})</span>"
    if cell.href:
        inner = f"<a href=\"{esc(cell.href)}\" title=\"the samples behind this number\">{inner}</a>"
    classes = "score small" if cell.small else "score"
    return f"<td class=\"{classes}\" title=\"{esc(cell.text())}\">{inner}</td>"
