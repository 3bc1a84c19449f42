"""The report pages' Jinja2 templates and stylesheet, kept in code so that the package needs no data files.

Autoescaping is on: every string from the registry (names, specs, logs, labels) is escaped; only SVG produced by
matplotlib (which escapes its own text) is marked safe.
"""

from __future__ import annotations

import jinja2

__all__ = ["environment"]

# ruff: noqa: E501 (template lines are HTML: wrapping them would change the whitespace of the page)

_CSS = """
:root { --ink: #111827; --muted: #6b7280; --line: #e5e7eb; --soft: #f9fafb; --accent: #1d4ed8; --good: #047857;
  --bad: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: #fff; }
header.top { background: linear-gradient(135deg, #1e3a8a, #1d4ed8); color: #fff; padding: 24px 40px; }
header.top h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header.top .meta { opacity: .9; font-size: 13px; }
.badge { display: inline-block; padding: 1px 9px; margin: 0 4px 0 0; border-radius: 999px; font-size: 12px;
  background: rgba(255,255,255,.18); border: 1px solid rgba(255,255,255,.35); }
.layout { display: grid; grid-template-columns: 220px minmax(0, 1fr); gap: 32px; padding: 24px 40px 64px; }
nav.toc { position: sticky; top: 16px; align-self: start; font-size: 13px; }
nav.toc h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 8px; }
nav.toc ol { list-style: none; margin: 0; padding: 0; }
nav.toc li { margin: 2px 0; }
nav.toc a { color: var(--ink); text-decoration: none; display: block; padding: 3px 8px; border-radius: 6px; }
nav.toc a:hover { background: var(--soft); color: var(--accent); }
main section { margin: 0 0 40px; }
main h2 { font-size: 20px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
main h3 { font-size: 15px; margin: 20px 0 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 16px; }
.card { border: 1px solid var(--line); border-radius: 10px; padding: 10px 16px; min-width: 120px; background: var(--soft); }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; margin: 0 0 16px; font-size: 13px; }
th, td { text-align: left; padding: 5px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.better { color: var(--good); font-weight: 600; } td.worse { color: var(--bad); font-weight: 600; }
.scroll { overflow-x: auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 20px; }
figure { margin: 0 0 20px; border: 1px solid var(--line); border-radius: 10px; padding: 12px; background: #fff; }
figure svg { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.wide figure { overflow-x: auto; }
.wide figure svg { max-width: none; }
figcaption { font-size: 12.5px; color: var(--muted); margin-top: 6px; }
pre { background: #0f172a; color: #e2e8f0; padding: 14px 16px; border-radius: 8px; overflow-x: auto; font-size: 12.5px;
  line-height: 1.45; max-height: 520px; }
details summary { cursor: pointer; color: var(--accent); margin: 4px 0 8px; }
.absent { border-left: 4px solid #f59e0b; background: #fffbeb; padding: 10px 16px; border-radius: 6px; }
.absent li { margin: 2px 0; }
.muted { color: var(--muted); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
@media (max-width: 900px) { .layout { grid-template-columns: 1fr; } nav.toc { position: static; } }
@media print { nav.toc { display: none; } .layout { display: block; } }
"""

_BASE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Conduit">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
  <h1>{{ heading }}</h1>
  <div class="meta">{% block meta %}{% endblock %}</div>
</header>
<div class="layout">
<nav class="toc" aria-label="Contents"><h2>Contents</h2><ol>
{% for section in sections %}<li><a href="#{{ section.id }}">{{ section.title }}</a></li>
{% endfor %}</ol></nav>
<main>
{% block body %}{% endblock %}
</main>
</div>
</body>
</html>
"""

_MACROS = """
{% macro plot(p) -%}
<figure id="{{ p.id }}">{{ p.svg | safe }}<figcaption>{{ p.caption }}</figcaption></figure>
{%- endmacro %}
{% macro pairs(rows, headers=("Name", "Value")) -%}
{% if rows %}<div class="scroll"><table><thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for cell in row %}<td{% if loop.index > 1 and cell is number %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>{% else %}<p class="muted">None recorded.</p>{% endif %}
{%- endmacro %}
{% macro grid(table) -%}
<div class="scroll"><table><thead><tr>{% for h in table.headers %}<th{% if not loop.first %} class="num"{% endif %}>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in table.rows %}<tr>{% for cell in row %}{% if loop.first %}<th>{{ cell }}</th>{% else %}<td class="num{% if cell is mapping %} {{ cell.css }}{% endif %}">{{ cell.text if cell is mapping else cell }}</td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{%- endmacro %}
"""

_REPORT = """{% extends "base.html" %}{% import "macros.html" as m %}
{% block meta %}
version {{ r.version }}{% for a in r.aliases %} <span class="badge">@{{ a }}</span>{% endfor %}
&middot; created {{ created }}{% if r.created_by %} by {{ r.created_by }}{% endif %}
{% if r.tags.get("task") %}&middot; {{ r.tags["task"] }}{% endif %}{% if r.tags.get("estimator") %} &middot; {{ r.tags["estimator"] }}{% endif %}
{% endblock %}
{% block body %}
<section id="summary"><h2>Summary</h2>
{% if r.description %}<p>{{ r.description }}</p>{% endif %}
<div class="cards">{% for name, value in headline %}<div class="card"><div class="label">{{ name }}</div><div class="value">{{ value }}</div></div>{% endfor %}</div>
<h3>Lineage</h3>{{ m.pairs(lineage) }}
<h3>Parameters</h3>{{ m.pairs(params, ("Parameter", "Value")) }}
{% if tags %}<h3>Tags</h3>{{ m.pairs(tags, ("Tag", "Value")) }}{% endif %}
{% if problems %}<div class="absent"><strong>Unreadable attachments</strong><ul>{% for p in problems %}<li>{{ p }}</li>{% endfor %}</ul></div>{% endif %}
</section>
{% if dataset %}<section id="dataset"><h2>Data set</h2>
{{ m.pairs(dataset.facts) }}
<h3>Profile ({{ dataset.rows }} rows)</h3>{{ m.grid(dataset.columns) }}
</section>{% endif %}
<section id="metrics"><h2>Metrics</h2>
{% if metrics.rows %}{{ m.grid(metrics) }}{% else %}<p class="muted">No metrics recorded.</p>{% endif %}
{% if per_class %}<h3>Per class</h3>{{ m.grid(per_class) }}{% endif %}
</section>
{% for section in plot_sections %}<section id="{{ section.id }}"><h2>{{ section.title }}</h2>
{% if section.text %}<p class="muted">{{ section.text }}</p>{% endif %}
{% if section.tables %}{% for t in section.tables %}<h3>{{ t.title }}</h3>{{ m.grid(t) }}{% endfor %}{% endif %}
<div class="{{ 'wide' if section.wide else 'grid' }}">{% for p in section.plots %}{{ m.plot(p) }}{% endfor %}</div>
</section>
{% endfor %}
{% if absent %}<section id="absent"><h2>Not in this report</h2><div class="absent"><ul>
{% for item in absent %}<li><strong>{{ item.title }}</strong>{% if item.id %} (<code>{{ item.id }}</code>){% endif %}: {{ item.reason }}</li>{% endfor %}
</ul></div></section>{% endif %}
<section id="spec"><h2>Training spec</h2>{% if r.spec %}<pre>{{ r.spec }}</pre>{% else %}<p class="muted">No spec recorded.</p>{% endif %}</section>
<section id="environment"><h2>Environment</h2>
<h3>Packages</h3>{{ m.pairs(packages, ("Package", "Version")) }}
{% if tensors %}<h3>Served tensors</h3>{{ m.pairs(tensors, ("Tensor", "Direction", "Type", "Shape")) }}{% endif %}
</section>
<section id="log"><h2>Training log</h2>{% if r.training_log %}<details><summary>{{ log_lines }} lines</summary><pre>{{ r.training_log }}</pre></details>{% else %}<p class="muted">No training log attached.</p>{% endif %}</section>
{% endblock %}
"""

_COMPARE = """{% extends "base.html" %}{% import "macros.html" as m %}
{% block meta %}
{% for r in versions %}<span class="badge">{{ "A" if loop.first else "B" }}: {{ r.ref }}{% for a in r.aliases %} @{{ a }}{% endfor %}</span>{% endfor %}
{% endblock %}
{% block body %}
<section id="versions"><h2>Versions</h2>{{ m.grid(overview) }}</section>
<section id="metrics"><h2>Metrics</h2>
{% if metrics.rows %}{{ m.grid(metrics) }}{% else %}<p class="muted">Neither version records metrics.</p>{% endif %}
<p class="muted">Difference is B − A; green where B is better (higher, or lower for losses and errors).</p>
</section>
<section id="params"><h2>Parameters</h2>{{ m.grid(params) }}</section>
{% if plots %}<section id="curves"><h2>Curves</h2><div class="grid">{% for p in plots %}{{ m.plot(p) }}{% endfor %}</div></section>{% endif %}
{% if absent %}<section id="absent"><h2>Not in this report</h2><div class="absent"><ul>
{% for item in absent %}<li><strong>{{ item.title }}</strong>{% if item.id %} (<code>{{ item.id }}</code>){% endif %}: {{ item.reason }}</li>{% endfor %}
</ul></div></section>{% endif %}
{% endblock %}
"""


def environment() -> jinja2.Environment:
    """The templates, autoescaped, failing on undefined names rather than printing nothing."""
    loader = jinja2.DictLoader(
        {"base.html": _BASE, "macros.html": _MACROS, "report.html": _REPORT, "compare.html": _COMPARE}
    )
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["css"] = _CSS
    return env
