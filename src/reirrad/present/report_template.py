"""Jinja2 template and print CSS of the clinical report (:mod:`reirrad.present.report`).

Kept in a Python module (not a package data file) so that every installation has it.
"""

CSS = r"""
@page {
  size: A4;
  margin: 15mm 13mm 17mm 13mm;
  @bottom-left { content: "reirrad report"; font: 7.5pt sans-serif; color: #666; }
  @bottom-right { content: "page " counter(page) " of " counter(pages); font: 7.5pt sans-serif; color: #666; }
}
:root { --ink: #1d2733; --muted: #5b6673; --rule: #c9d1da; --head: #e9eef4; --accent: #1f4e79;
        --pass: #1e7b34; --pass-bg: #e3f4e6; --fail: #a61b1b; --fail-bg: #fbe4e4; }
* { box-sizing: border-box; }
html { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9pt;
       color: var(--ink); line-height: 1.35; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 190mm; padding: 6mm 0; }
h1 { font-size: 17pt; margin: 0 0 1mm 0; color: var(--accent); }
h2 { font-size: 12pt; color: var(--accent); border-bottom: 1.5pt solid var(--accent);
     padding-bottom: 1mm; margin: 7mm 0 2.5mm 0; break-after: avoid; }
h3 { font-size: 10pt; margin: 4mm 0 1.5mm 0; break-after: avoid; }
p { margin: 1mm 0 2mm 0; }
.header { display: flex; justify-content: space-between; align-items: flex-end;
          border-bottom: 2.5pt solid var(--accent); padding-bottom: 2mm; }
.header .meta { text-align: right; font-size: 8.5pt; color: var(--muted); }
.header .patient { font-size: 11pt; font-weight: bold; color: var(--ink); }
.banner { border: 1.5pt solid #b7791f; background: #fff7e6; padding: 2.5mm 3.5mm; margin: 3mm 0;
          font-size: 8.5pt; break-inside: avoid; }
.banner strong { color: #8a4b00; text-transform: uppercase; letter-spacing: .03em; }
.overview { display: flex; gap: 3mm; margin: 3mm 0; }
.overview .box { flex: 1; border: 0.75pt solid var(--rule); padding: 2mm 3mm; border-radius: 1.5mm; }
.overview .big { font-size: 15pt; font-weight: bold; }
.overview .fail .big { color: var(--fail); }
.overview .pass .big { color: var(--pass); }
.overview .warn { border-color: #b7791f; background: #fff7e6; }
.overview .warn .big { color: #8a4b00; }
.overview ul { margin: 0.5mm 0 0 0; padding-left: 3.5mm; }
.overview { flex-wrap: wrap; }
.overview .wide { flex: 1 1 100%; display: grid; grid-template-columns: 28mm 1fr; column-gap: 3mm; }
.overview .wide ul { grid-column: 2; grid-row: 1 / span 2; margin: 0; }
.basis { margin-top: -1mm; }
td.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm 0; font-size: 8pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th { background: var(--head); text-align: left; font-weight: bold; border-bottom: 1pt solid var(--rule); }
th, td { padding: 1.1mm 1.6mm; vertical-align: top; border-bottom: 0.5pt solid var(--rule); }
td { overflow-wrap: break-word; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { white-space: normal; }
tr.group-start td { border-top: 1pt solid #9aa7b4; }
.verdict { display: inline-block; padding: 0.2mm 1.6mm; border-radius: 1mm; font-weight: bold;
           font-size: 7.5pt; white-space: nowrap; }
.verdict.PASS { color: var(--pass); background: var(--pass-bg); }
.verdict.FAIL { color: var(--fail); background: var(--fail-bg); }
.verdict.none { color: var(--muted); background: #f0f2f4; font-weight: normal; }
.flag { display: block; color: var(--fail); font-size: 7.5pt; margin-top: 0.6mm; }
.small { font-size: 7.5pt; color: var(--muted); }
.mono { font-family: "DejaVu Sans Mono", monospace; font-size: 6.8pt; word-break: break-all; }
table.compact { font-size: 7pt; table-layout: fixed; }
table.compact td { padding: 0.35mm 1.2mm; }
table.compact td.mono { font-size: 6.1pt; white-space: nowrap; overflow-wrap: normal; word-break: normal; }
table.compact td.mono .uid { color: var(--muted); }
table.compact td.path { word-break: break-all; }
.keep { break-inside: avoid; }
table.limits { table-layout: fixed; }
.unavailable { color: var(--muted); font-style: italic; border-left: 2pt solid var(--rule);
               padding: 1mm 3mm; margin: 1mm 0 3mm 0; }
figure { margin: 2mm 0 4mm 0; break-inside: avoid; text-align: center; }
figure img { max-width: 100%; }
figure.chart img { max-width: 150mm; }
figcaption { font-size: 7.5pt; color: var(--muted); text-align: left; margin-top: 1mm; }
ul { margin: 1mm 0 2mm 0; padding-left: 5mm; }
li { margin-bottom: 0.6mm; }
.kv { display: grid; grid-template-columns: 38mm 1fr; gap: 0.6mm 3mm; margin: 1mm 0 3mm 0; }
.kv div:nth-child(odd) { color: var(--muted); }
.signature { break-inside: avoid; margin-top: 6mm; }
.signature table td { height: 11mm; vertical-align: bottom; }
.signature .line { border-bottom: 0.75pt solid var(--ink); }
table.sign { border-collapse: separate; border-spacing: 3mm 0; margin-left: -3mm; width: calc(100% + 6mm); }
table.sign th { background: none; border-bottom: none; padding-bottom: 0; }
table.sign td { border-bottom: none; }
table.sign td.line { border-bottom: 0.75pt solid var(--ink); }
.decision { display: flex; gap: 8mm; margin: 2mm 0; font-size: 9pt; }
.comments { border: 0.75pt solid var(--rule); height: 24mm; padding: 1.5mm 2mm; color: var(--muted);
            font-size: 8pt; margin: 2mm 0 3mm 0; }
/* paged media: no forced breaks; keep small blocks whole, headings with what follows,
   and let long tables flow (rows whole, header repeated) so that no page is left half empty */
.overview, .alert, .kv, figure, .keep { break-inside: avoid; }
h2, h3, .basis, p.lead { break-after: avoid; }
table { break-inside: auto; }
p, li { orphans: 3; widows: 3; }
.alert { border: 1.5pt solid var(--fail); background: var(--fail-bg); padding: 2mm 3.5mm; margin: 2mm 0 3mm 0;
         break-inside: avoid; }
.alert strong { color: var(--fail); }
.alert ul { margin: 1mm 0; }
.alert-line { color: var(--fail); font-size: 8.5pt; margin: 0 0 2mm 0; }
.nowrap { white-space: nowrap; }
@media screen { body { padding: 10mm; background: #fff; } }
"""

TEMPLATE = r"""<!DOCTYPE html>
{% macro verdict(v) -%}
<span class="verdict {{ v if v in ('PASS', 'FAIL') else 'none' }}">{{ v }}</span>
{%- endmacro %}
{% macro flags(items) -%}
{% for f in items %}<span class="flag">⚠ {{ f }}</span>{% endfor %}
{%- endmacro %}
{% macro unavailable(section) -%}
<p class="unavailable">{{ section.unavailable }}</p>
{%- endmacro %}
{% macro figures_of(key) -%}
{% for fig in data.figures.get(key, ()) %}
<figure><img alt="{{ fig.title }}" src="{{ fig.data_uri }}">
<figcaption><strong>{{ fig.title }}.</strong> {{ fig.caption }}</figcaption></figure>
{% endfor %}
{%- endmacro %}
{% macro generic(section, key) -%}
{% if section.unavailable is defined %}{{ unavailable(section) }}{% else %}
{% if not section.get('tables_first') %}{{ figures_of(key) }}{% endif %}
{% for table in section.get('tables', []) %}
{% if table.title %}<h3>{{ table.title }}</h3>{% endif %}
<table><thead><tr>{% for c in table.columns %}<th{% if c.endswith(')') or c in table.get('numeric', []) %} class="num"{% endif %}>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in table.rows %}<tr>{% for cell in row %}{% if cell is mapping %}<td>{{ verdict(cell.verdict) }}{{ flags(cell.flags) }}</td>{% elif cell in ('PASS', 'FAIL', 'pass in all', 'fail in all', 'depends') %}<td>{{ verdict(cell if cell in ('PASS', 'FAIL') else ('PASS' if cell == 'pass in all' else ('FAIL' if cell == 'fail in all' else cell))) }}</td>{% else %}<td{% if table.columns[loop.index0].endswith(')') %} class="num"{% endif %}>{{ cell }}</td>{% endif %}{% endfor %}</tr>{% endfor %}</tbody></table>
{% endfor %}
{% if section.get('text') %}<p>{{ section.text }}</p>{% endif %}
{% if section.get('notes') %}<ul class="small">{% for n in section.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if section.get('tables_first') %}{{ figures_of(key) }}{% endif %}
{% endif %}
{%- endmacro %}
{% macro summary_table(rows, id) -%}
<table id="{{ id }}">
<thead><tr><th>Structure</th><th>Statistic</th><th class="num">α/β (Gy)</th>
{% for cid in s.course_ids %}<th class="num">{{ cid }} (Gy)</th>{% endfor %}
<th class="num">Cumulative EQD2 (Gy)</th><th class="num">without recovery (Gy)</th><th class="num">BED (Gy)</th><th>Verdict</th>{% if s.outcomes %}<th>Observed (follow-up, CTCAE v5.0)</th>{% endif %}</tr></thead>
<tbody>
{% for r in rows %}
<tr><td>{{ r.structure }}</td><td>{{ r.statistic }}{% if r.approximate %}*{% endif %}</td><td class="num">{{ r.alpha_beta }}</td>
{% for v in r.courses %}<td class="num">{{ v }}</td>{% endfor %}
<td class="num"><strong>{{ r.eqd2 }}</strong></td><td class="num">{{ r.eqd2_no_recovery }}</td><td class="num">{{ r.bed }}</td><td>{{ verdict(r.verdict) }}</td>{% if s.outcomes %}<td class="small">{{ r.outcome }}</td>{% endif %}</tr>
{% endfor %}
</tbody></table>
{% if rows | selectattr('approximate') | list %}<p class="small">* Dmean converted with its own dose per fraction: the EQD2 of the mean dose, an approximation of the mean EQD2.</p>{% endif %}
{%- endmacro %}
{% macro limits_table(rows, id, compact=False) -%}
<table id="{{ id }}" class="limits">
{% if compact %}<colgroup><col style="width: 22%"><col style="width: 26%"><col style="width: 22%"><col style="width: 10%"><col style="width: 10%"><col></colgroup>
{% else %}<colgroup><col style="width: 15%"><col style="width: 15%"><col style="width: 13%"><col style="width: 8.5%"><col style="width: 8.5%"><col style="width: 8%"><col></colgroup>{% endif %}
<thead><tr><th>Structure</th><th>Limit</th><th>Compared with</th><th class="num">Value</th><th class="num">Margin</th><th>Verdict</th>{% if not compact %}<th>End point · source · evidence</th>{% endif %}</tr></thead>
<tbody>
{% for l in rows %}
<tr><td>{{ l.structure }}</td><td>{{ l.limit }}<br><span class="small">{{ l.id }}</span></td><td class="small">{{ l.quantity }}</td>
<td class="num">{{ l.value }}</td><td class="num">{{ l.margin }}</td><td class="verdict-cell">{{ verdict(l.verdict) }}{{ flags(l.flags) }}</td>
{% if not compact %}<td class="small">{{ l.endpoint }} · {{ l.source }} · <em>{{ l.evidence }}</em>{% for w in l.warnings %}<br>⚠ {{ w }}{% endfor %}</td>{% endif %}</tr>
{% else %}<tr><td colspan="{{ 6 if compact else 7 }}" class="unavailable">no limits apply to the structures of this case</td></tr>
{% endfor %}
</tbody></table>
{%- endmacro %}
<html lang="en" data-patient="{{ data.patient_id }}">
<head>
<meta charset="utf-8">
<meta name="generator" content="{{ data.software }}">
<title>{{ data.title }} – {{ data.patient_id }}</title>
<style>{{ css | safe }}</style>
<style>@page { @bottom-left { content: "reirrad report · {{ data.patient_id | replace('"', '') }} · {{ data.generated }}"; } }</style>
</head>
<body>
<div class="header">
  <div><h1>{{ data.title }}</h1>
  <div class="patient">Patient <span id="patient-id">{{ data.patient_id }}</span></div></div>
  <div class="meta">Generated {{ data.generated }}<br>{{ data.software }}</div>
</div>

<div class="banner" id="banner"><strong>Not a medical device · decision support only.</strong>
{{ data.banner }}</div>

{% set ov = s.overview %}
<div class="overview" id="overview">
  <div class="box pass"><div class="small">limits met</div><div class="big" id="count-met">{{ ov.passing }}</div>
  <div class="small">of {{ ov.constraints }} checked on {{ ov.with_limits }} of {{ ov.structures }} structures</div></div>
  <div class="box {{ 'fail' if ov.failing else 'pass' }}"><div class="small">limits exceeded</div><div class="big" id="count-exceeded">{{ ov.failing }}</div>
  {% if ov.failing_list %}<ul class="small">{% for f in ov.failing_list %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}</div>
  <div class="box {{ 'warn' if ov.not_evaluable else 'pass' }}"><div class="small">limits not evaluable</div><div class="big" id="count-not-evaluable">{{ ov.not_evaluable | length }}</div>
  {% if ov.not_evaluable %}<ul class="small">{% for f in ov.not_evaluable %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}</div>
  {% if ov.to_check %}
  <div class="box warn wide"><div class="small">verdicts to check</div><div class="big" id="count-to-check">{{ ov.to_check }}</div>
  <ul class="small">{% for f in ov.flagged %}<li>{{ f }}</li>{% endfor %}{% for f in ov.depends %}<li>{{ f }}: verdict changes with α/β or recovery{% if s.basis == 'voxel' %} (section 8){% else %} (met at the nominal values, not in every α/β × recovery scenario of analysis.sensitivity){% endif %}</li>{% endfor %}{% for f in ov.recovery %}<li>{{ f }}</li>{% endfor %}</ul></div>
  {% endif %}
</div>
<p class="small basis" id="basis">{{ ov.basis }}</p>
{% if s.explorer.get('none_feasible') %}<p class="alert-line" id="overview-explorer"><strong>Fractionation explorer: no feasible scheme</strong> — {% if s.explorer.exceeded %}the earlier courses alone already exceed {{ s.explorer.exceeded | length }} cumulative limit{{ 's' if s.explorer.exceeded | length != 1 else '' }}{% else %}no dose keeps every limit{% endif %} (section 9).</p>{% endif %}

<h2 id="timeline">1. Patient and timeline of courses</h2>
<div class="kv" id="patient">
{% for k, v in s.patient %}<div>{{ k }}</div><div>{{ v }}</div>{% endfor %}
</div>
{% for fig in data.figures.timeline %}
<figure><img alt="{{ fig.title }}" src="{{ fig.data_uri }}"></figure>
{% endfor %}
<table>
<thead><tr><th>Course</th><th>Dates</th><th class="num">Fractions</th><th>Prescriptions</th><th>Technique / systemic therapy</th><th>Interval to newest</th><th>Dose source</th></tr></thead>
<tbody>
{% for c in s.courses %}
<tr><td><strong>{{ c.id }}</strong><br><span class="small">{{ c.label }}</span></td><td class="nowrap">{{ c.start }}<br>to {{ c.end }}</td><td class="num">{{ c.fractions }}</td>
<td>{{ c.prescriptions }}</td><td>{{ c.technique }}<br><span class="small">{{ c.systemic }}</span></td><td>{{ c.interval }}</td><td>{{ c.source }}</td></tr>
{% endfor %}
</tbody></table>

<h2 id="assumptions">2. Assumptions</h2>
<h3>Tissue parameters</h3>
<table>
{% set roi = s.tissues and s.tissues[0].get('roi') %}
<thead><tr><th>Structure</th>{% if roi %}<th>ROI used</th>{% endif %}<th>Role</th><th>Organ key</th><th class="num">α/β</th><th>Recovery model (source)</th></tr></thead>
<tbody>
{% for t in s.tissues %}
<tr><td>{{ t.structure }}</td>{% if roi %}<td>{{ t.roi }}</td>{% endif %}<td>{{ t.role }}</td><td>{{ t.organ }}</td><td class="num">{{ t.alpha_beta }}</td><td class="small">{{ t.recovery }}</td></tr>
{% endfor %}
</tbody></table>
<div class="kv">
  {% if s.basis == 'voxel' %}<div>Conversion (result)</div><div><strong>voxel by voxel</strong>: each voxel's physical dose per fraction converted to EQD2 with the α/β of the tissue it belongs to, every course and phase separately (details under "Voxel-wise accumulation" below)</div>{% endif %}
  {% for g in s.methods | groupby('method') %}<div>Conversion, {{ g.list | map(attribute='course') | join(', ') }}{% if s.basis == 'voxel' %} (structure-level comparison){% endif %}</div><div><strong>{{ g.grouper }}</strong>: {{ g.list[0].text }}</div>{% endfor %}
  <div>Recovery interval</div><div>from the end of each earlier course to the start of the newest course (table above); the newest course is counted in full</div>
  <div>Registration / summation</div><div>{{ s.registration }}</div>
  <div>Software</div><div>{{ data.software }}</div>
</div>
<h3>Stated assumptions of the assessment</h3>
<ul class="small">{% for a in s.assumptions %}<li>{{ a }}</li>{% endfor %}</ul>
{% if s.get('voxel_assumptions') %}<h3>Voxel-wise accumulation</h3>
<ul class="small">{% for a in s.voxel_assumptions %}<li>{{ a }}</li>{% endfor %}</ul>{% endif %}
{% if s.notes %}<h3>Notes</h3><ul class="small">{% for n in s.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if s.warnings or s.not_evaluated %}<h3>Warnings</h3><ul class="small">
{% for w in s.warnings %}<li>{{ w }}</li>{% endfor %}
{% for w in s.not_evaluated %}<li>not evaluated: {{ w }}</li>{% endfor %}
</ul>{% endif %}

<div class="keep" id="provenance">
<h3>Input files (SHA-256)</h3>
{% set pv = s.provenance %}
<table class="compact" id="files-table">
<colgroup><col style="width: 6%"><col style="width: 10%"><col style="width: 22%"><col style="width: 6%"><col></colgroup>
<thead><tr><th>Course</th><th>Modality</th><th>File or folder</th><th class="num">Files</th><th>Series instance UID · SHA-256</th></tr></thead>
<tbody>
{% for f in pv.series %}<tr><td>{{ f.course }}</td><td>{{ f.modality }}</td><td class="path">{{ f.path }}</td><td class="num">{{ f.files }}</td><td class="mono">{% if f.series_uid != '–' %}<span class="uid">{{ f.series_uid }}</span><br>{% endif %}{{ f.sha256 }}{% if f.series %} <sup>†</sup>{% endif %}</td></tr>{% endfor %}
</tbody></table>
<p class="small">{{ pv.total_files }} file{{ 's' if pv.total_files != 1 else '' }}{% if pv.series | selectattr('series_uid', 'ne', '–') | list %}, one row per DICOM series (first line: its series instance UID; second: SHA-256){% endif %}.{% if pv.series | selectattr('series') | list %} † One SHA-256 for a series of several files: the {{ pv.definition }}.{% endif %}
{% if pv.appendix %} Every file with its own SHA-256 is listed in the provenance appendix <strong>{{ pv.appendix.name }}</strong>, written beside this report (SHA-256 <span class="mono">{{ pv.appendix.sha256 }}</span>).
{% else %}The per-file list is written beside the report as its provenance appendix when the report is saved.{% endif %}</p>
</div>

<h2 id="results">3. Cumulative doses and verdicts</h2>
{% if s.basis == 'voxel' %}
<p class="small">Voxel-wise result: every course's dose mapped onto the reference dose grid, converted to EQD2 voxel by voxel (each voxel's α/β and dose per fraction), the recovery discount applied per course, and summed. EQD2 in Gy at the structure's α/β. Verdict: all limits on the row met (PASS), at least one exceeded (FAIL). Last column: the structure-level approximation (table below), for comparison only.</p>
<table id="summary-table">
<thead><tr><th>Structure</th><th>Statistic</th><th class="num">α/β (Gy)</th><th class="num">Cumulative EQD2 (Gy)</th><th class="num">without recovery (Gy)</th><th>Verdict</th><th class="num">Structure-level approximation (Gy)</th>{% if s.outcomes %}<th>Observed (follow-up, CTCAE v5.0)</th>{% endif %}</tr></thead>
<tbody>
{% for r in s.summary %}
{% set first = loop.first or s.summary[loop.index0 - 1].structure != r.structure %}
<tr{% if first and not loop.first %} class="group-start"{% endif %}><td>{% if first %}{{ r.structure }}{% endif %}</td><td>{{ r.statistic }}</td><td class="num">{{ r.alpha_beta }}</td>
<td class="num"><strong>{{ r.eqd2 }}</strong></td><td class="num">{{ r.eqd2_no_recovery }}</td><td>{{ verdict(r.verdict) }}{% if first %}{{ flags(r.flags) }}{% endif %}</td><td class="num muted">{{ r.comparison }}</td>{% if s.outcomes %}<td class="small">{{ r.outcome }}</td>{% endif %}</tr>
{% endfor %}
</tbody></table>
{% else %}
<p class="small">Structure-level result (no voxel-wise sum): each course's structure statistic converted to EQD2 at the structure's α/β and added. Course columns: the course's EQD2 after its recovery discount (the newest course in full). Verdict: all limits on the row met (PASS), at least one exceeded (FAIL).</p>
{{ summary_table(s.summary, 'summary-table') }}
{% endif %}

<h3>Limits checked{% if s.basis == 'voxel' %} on the voxel-wise result{% endif %}</h3>
{{ limits_table(s.limits, 'limits-table') }}

{% if s.comparison %}
<div class="comparison" id="comparison">
<h3>Structure-level approximation, for comparison</h3>
<p class="small">The same courses assessed from each course's structure statistics (from the course's own dose-volume histogram) converted to EQD2 and added structure by structure. This ignores where in the structure each course's dose fell and is not the result of this report; differences from the voxel-wise values above show the size of that approximation. Sources of the limits: the table above.</p>
{{ summary_table(s.comparison.summary, 'comparison-table') }}
{{ limits_table(s.comparison.limits, 'comparison-limits-table', compact=True) }}
</div>
{% endif %}

{% if s.basis == 'voxel' %}
<p class="small">Each course's contribution to the voxel-wise result: section 4 (table, and the dose-volume histograms of each course's physical dose and EQD2 on the reference grid).</p>
{% else %}
<h3>Per course</h3>
<table id="per-course-table">
<thead><tr><th>Structure</th><th>Statistic</th><th>Course</th><th>Method</th><th class="num">Physical (Gy)</th><th class="num">Dose/fx (Gy)</th><th class="num">EQD2 (Gy)</th><th class="num">BED (Gy)</th><th class="num">Interval</th><th class="num">Recovered</th><th class="num">Counted EQD2 (Gy)</th></tr></thead>
<tbody>
{% for r in s.per_course %}
{% set first = loop.first or s.per_course[loop.index0 - 1].structure != r.structure or s.per_course[loop.index0 - 1].statistic != r.statistic %}
<tr{% if first and not loop.first %} class="group-start"{% endif %}><td>{% if first %}{{ r.structure }}{% endif %}</td><td>{% if first %}{{ r.statistic }}{% endif %}</td><td>{{ r.course }}</td><td>{{ r.method }}</td>
<td class="num">{{ r.physical }}</td><td class="num">{{ r.dpf }}</td><td class="num">{{ r.eqd2 }}</td><td class="num">{{ r.bed }}</td><td class="num">{{ r.interval }}</td><td class="num">{{ r.recovered }}</td><td class="num">{{ r.effective }}</td></tr>
{% endfor %}
</tbody></table>
{% endif %}

<h2 id="dvh">4. Dose-volume histograms</h2>
{{ generic(s.dvh, 'dvh') }}

<h2 id="images">5. Cumulative EQD2: axial, coronal and sagittal planes</h2>
{{ generic(s.images, 'images') }}

<h2 id="ntcp">6. Normal tissue complication probability</h2>
{{ generic(s.ntcp, 'ntcp') }}

<h2 id="prognosis">7. Prognosis and stage</h2>
{% set li = s.prognosis.li %}
<h3>Li et al. 2018 prognostic index (salvage re-irradiation of recurrent NPC)</h3>
{% if li.unavailable is defined %}{{ unavailable(li) }}{% else %}
<p>Index <strong id="li-index">{{ li.index }}</strong>: <strong>{{ li.group }} risk</strong> (cut-off {{ li.cutoff }}; higher = worse overall survival).</p>
<table style="width: 70%"><thead><tr><th>Covariate</th><th class="num">Value</th><th class="num">Contribution</th></tr></thead><tbody>
{% for t in li.terms %}<tr><td>{{ t.name }}</td><td class="num">{{ t.value }}</td><td class="num">{{ t.term }}</td></tr>{% endfor %}
</tbody></table>
<ul class="small"><li>{{ li.note }}</li>{% if li.eqd2 %}<li>{{ li.eqd2 }}</li>{% endif %}{% for a in li.assumptions %}<li>{{ a }}</li>{% endfor %}<li>{{ li.citation }}</li></ul>
{% endif %}
<h3>Stage</h3>
{% set st = s.prognosis.stage %}
{% if st.unavailable is defined %}{{ unavailable(st) }}{% else %}
<p>{{ st.edition }} {{ st.tnm }}: stage group <strong>{{ st.group }}</strong> <span class="small">({{ st.source }})</span></p>
{% endif %}

<h2 id="sensitivity">8. Sensitivity of the verdicts</h2>
{{ generic(s.sensitivity, 'sensitivity') }}

<h2 id="explorer">9. Fractionation explorer</h2>
{% set ex = s.explorer %}
{% if ex.unavailable is defined %}{{ unavailable(ex) }}{% else %}
<p>History: {{ ex.history }}; {{ ex.new_course }} from {{ ex.start }}. For each number of fractions, the highest prescription dose per fraction that keeps every cumulative limit, and the dose the target ({{ ex.target }}) then receives.</p>
{% if ex.none_feasible %}
<div class="alert" id="no-feasible-scheme"><strong>No feasible scheme.</strong> At no number of fractions from {{ ex.fraction_range }} does any dose keep every cumulative limit{% if ex.exceeded %}: the earlier courses alone already reach or exceed these limits, so any further dose to these organs exceeds them:{% else %}; the limiting constraints are:{% endif %}
<ul>{% for e in (ex.exceeded or ex.binding) %}<li>{{ e }}</li>{% endfor %}</ul>
A re-irradiation within these limits is not possible; re-irradiating means accepting a dose above them (a clinical decision, to be documented in section 11).</div>
{% for fig in data.figures.explorer %}
<figure class="chart"><img alt="{{ fig.title }}" src="{{ fig.data_uri }}"><figcaption><strong>{{ fig.title }}.</strong> {{ fig.caption }}</figcaption></figure>
{% endfor %}
{% else %}
{% if ex.exceeded %}<p><strong>Already exceeded by the earlier courses:</strong></p><ul class="small">{% for e in ex.exceeded %}<li>{{ e }}</li>{% endfor %}</ul>{% endif %}
{% for fig in data.figures.explorer %}
<figure class="chart"><img alt="{{ fig.title }}" src="{{ fig.data_uri }}"><figcaption><strong>{{ fig.title }}.</strong> {{ fig.caption }}</figcaption></figure>
{% endfor %}
<table id="explorer-table" style="table-layout: fixed">
<colgroup><col style="width: 8%"><col style="width: 9%"><col style="width: 9%"><col style="width: 10%"><col style="width: 11%"><col style="width: 10%"><col style="width: 8%"><col style="width: 8%"><col></colgroup>
<thead><tr><th class="num">Fractions</th><th class="num">Dose/fx (Gy)</th><th class="num">Total (Gy)</th><th class="num">Target EQD2, new (Gy)</th><th class="num">Target EQD2, cumulative (Gy)</th><th class="num">Target BED, new (Gy)</th><th>In window</th><th>Curative</th><th>Binding constraint</th></tr></thead>
<tbody>
{% for r in ex.rows %}<tr><td class="num">{{ r.fractions }}</td><td class="num">{% if r.feasible %}{{ r.dpf }}{% else %}<span class="verdict FAIL">none</span>{% endif %}</td><td class="num">{{ r.total }}</td><td class="num">{{ r.eqd2_new }}</td><td class="num">{{ r.eqd2_cum }}</td><td class="num">{{ r.bed_new }}</td><td>{{ r.window }}</td><td>{{ r.curative }}</td><td class="small">{{ r.binding }}</td></tr>{% endfor %}
</tbody></table>
{% endif %}
{% if ex.not_explored %}<p class="small lead">Not explored:</p><ul class="small">{% for n in ex.not_explored %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
<ul class="small">{% for a in ex.assumptions %}<li>{{ a }}</li>{% endfor %}</ul>
<p class="small lead">Sources:</p><ul class="small">{% for a in ex.sources %}<li>{{ a }}</li>{% endfor %}</ul>
{% endif %}

<h2 id="estro">10. ESTRO-EORTC re-irradiation reporting items</h2>
<p class="small">{{ s.estro.note }}</p>
<table id="estro-table">
<thead><tr><th style="width: 28%">Item</th><th>This case</th><th style="width: 22%">Verified source of the item</th></tr></thead>
<tbody>
{% for i in s.estro['items'] %}<tr><td>{{ i['item'] }}</td><td>{{ i['case'] }}</td><td class="small">{{ i['source'] }}</td></tr>{% endfor %}
</tbody></table>
<h3>Reported in addition (not verified as consensus items)</h3>
<table><tbody>
{% for i in s.estro.further %}<tr><td style="width: 28%">{{ i['item'] }}</td><td>{{ i['case'] }}</td></tr>{% endfor %}
</tbody></table>
<ul class="small">{% for r in s.estro.references %}<li>{{ r }}</li>{% endfor %}</ul>

<div class="signature" id="signature">
<h2>11. Review and sign-off</h2>
<p class="small">I have reviewed the inputs, the assumptions (section 2) and the results of this report.</p>
<div class="decision">
  <div><strong>Decision:</strong></div>
  <div>☐ re-irradiation as planned</div><div>☐ with modifications (below)</div><div>☐ not recommended</div>
</div>
<div class="comments">Comments / modifications:</div>
<table class="sign">
<thead><tr><th style="width: 21%"></th><th>Name</th><th style="width: 19%">Role</th><th style="width: 14%">Date</th><th style="width: 24%">Signature</th></tr></thead>
<tbody>
<tr><td>Prepared by</td><td class="line"></td><td class="line"></td><td class="line"></td><td class="line"></td></tr>
<tr><td>Checked by (medical physicist)</td><td class="line"></td><td class="line"></td><td class="line"></td><td class="line"></td></tr>
<tr><td>Approved by (radiation oncologist)</td><td class="line"></td><td class="line"></td><td class="line"></td><td class="line"></td></tr>
</tbody></table>
<p class="small">{{ data.banner }}</p>
</div>
</body>
</html>
"""
