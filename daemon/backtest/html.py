"""`report.html`: the whole backtest in one file, for sharing with the desk.

One self-contained page — the charts embedded as base64 PNG `data:` URIs, the CSS inline, no
scripts, no fonts, links or images fetched from anywhere — so it can be mailed, attached to a
ticket or opened from a file share years later and look the same. It holds what the terminal
table holds (same columns, same wording: the helpers in `table` are shared), then the counts
per channel, then one section per rule: its chart and its alerts.

Rule names, summaries, labels and channel names are user text: the template is rendered by
jinja2 with autoescaping on, so `<b>x&y</b>` in a rule name shows as text.

A rule's alerts list is cut at `MAX_ALERT_ROWS` rows (a noisy rule would otherwise make the
page unusable); the section says how many more there are, and `alerts.csv` has them all.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from daemon.backtest.charts import chart_names
from daemon.backtest.files import alert_channels, alert_held
from daemon.backtest.model import BacktestResult
from daemon.backtest.table import (
    channels_of,
    footer_lines,
    held_by_channel,
    held_summary,
    human_duration,
    ignored_summary,
    ny_time,
    outcome_word,
    plural,
    range_text,
    rule_names,
    stats_by_rule,
)

__all__ = ["MAX_ALERT_ROWS", "render_report", "write_report"]

MAX_ALERT_ROWS = 500

_CSS = """
:root { --ink: #1d1d1f; --muted: #6b6b70; --rule: #d9d9de; --fire: #b3261e; --ok: #1e7b34; }
* { box-sizing: border-box; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 24px 32px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 6px; padding-top: 8px; border-top: 2px solid var(--rule);
     break-after: avoid; overflow-wrap: anywhere; }
h3 { font-size: 14px; margin: 14px 0 4px; break-after: avoid; }
.meta { color: var(--muted); margin: 2px 0; }
.meta b { color: var(--ink); font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 4px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px 3px 0; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { font-weight: 600; border-bottom: 1.5px solid var(--ink); white-space: nowrap; }
td.n, th.n { text-align: right; padding-left: 10px; }
td.rule { overflow-wrap: anywhere; max-width: 340px; }
tr.silent td { color: var(--muted); }
td.t { white-space: nowrap; }
.firing { color: var(--fire); font-weight: 600; }
.resolved { color: var(--ok); font-weight: 600; }
.reminder { color: var(--fire); }
.note { color: var(--muted); font-size: 12.5px; margin: 2px 0; }
.held { color: var(--muted); }
figure { margin: 8px 0; break-inside: avoid; }
figure img { width: 100%; max-width: 1200px; height: auto; border: 1px solid var(--rule); }
a { color: inherit; }
code { font-size: 12.5px; }
@media print {
  body { padding: 0; font-size: 11px; max-width: none; }
  h2 { margin-top: 18px; }
  a { text-decoration: none; }
  tr { break-inside: avoid; }
}
"""

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tickwatch backtest — {{ range }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<h1>tickwatch backtest</h1>
<p class="meta"><b>Data</b> {{ range }}, New York time</p>
<p class="meta"><b>Read</b> {{ "{:,}".format(ticks) }} ticks, {{ "{:,}".format(headlines) }}
headlines · {{ "{:,}".format(n_alerts) }} alert transitions, {{ "{:,}".format(n_messages) }}
messages</p>
{% if ignored %}<p class="meta"><b>Ignored</b> (no rule reads them): {{ ignored }}</p>{% endif %}
{% if inputs %}<p class="meta"><b>Inputs</b> {% for i in inputs %}<code>{{ i }}</code>
{%- if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
</header>

<section id="rules">
<h2>Rules</h2>
<table>
<thead><tr><th>rule</th><th class="n">fires</th><th class="n">clears</th>
<th class="n">firing</th><th class="n">longest</th><th class="n">flaps</th>
<th class="n">/week</th>
{%- for c in channels %}<th class="n">{{ c }}</th>{% endfor %}<th>held</th></tr></thead>
<tbody>
{% for r in rows %}<tr{% if r.silent %} class="silent"{% endif %}>
<td class="rule"><a href="#{{ r.anchor }}">{{ r.rule }}</a></td>
<td class="n">{{ r.fires }}</td><td class="n">{{ r.clears }}</td>
<td class="n">{{ r.firing }}</td><td class="n">{{ r.longest }}</td>
<td class="n">{{ r.flaps }}</td><td class="n">{{ r.per_week }}</td>
{%- for n in r.per_channel %}<td class="n">{{ n }}</td>{% endfor %}
<td class="held">{{ r.held }}</td></tr>
{% endfor %}</tbody>
</table>
{% for line in notes %}<p class="note">{{ line }}</p>{% endfor %}
</section>

<section id="channels">
<h2>Channels</h2>
{% if channel_rows %}<table>
<thead><tr><th>channel</th><th class="n">messages</th><th class="n">single</th>
<th class="n">group</th><th class="n">digest</th><th class="n">alerts carried</th>
<th>held back</th></tr></thead>
<tbody>
{% for c in channel_rows %}<tr><td>{{ c.channel }}</td><td class="n">{{ c.total }}</td>
<td class="n">{{ c.alert }}</td><td class="n">{{ c.group }}</td><td class="n">{{ c.digest }}</td>
<td class="n">{{ c.carried }}</td><td class="held">{{ c.held }}</td></tr>
{% endfor %}</tbody>
</table>
<p class="note">What each channel would have received after the route tree's grouping,
inhibition, silences and quiet hours. Nothing was sent.</p>
{% else %}<p class="note">No channel would have received anything.</p>{% endif %}
</section>

{% for s in sections %}
<section class="rule" id="{{ s.anchor }}">
<h2>{{ s.rule }}</h2>
<p class="meta">{{ s.line }}</p>
{% if s.chart %}<figure><img src="data:image/png;base64,{{ s.chart }}"
alt="chart of rule {{ s.rule }}" width="1200" height="500"></figure>
{% else %}<p class="note">No chart.</p>{% endif %}
{% if s.alerts %}<h3>Alerts</h3>
<table>
<thead><tr><th>time (New York)</th><th>state</th><th>instance</th><th class="n">value</th>
<th class="n">threshold</th><th>summary</th><th>channels</th><th>held</th></tr></thead>
<tbody>
{% for a in s.alerts %}<tr><td class="t">{{ a.time }}</td>
<td class="{{ a.css }}">{{ a.state }}</td><td>{{ a.instance }}</td>
<td class="n">{{ a.value }}</td><td class="n">{{ a.threshold }}</td><td>{{ a.summary }}</td>
<td>{{ a.channels }}</td><td class="held">{{ a.held }}</td></tr>
{% endfor %}</tbody>
</table>
{% if s.more %}<p class="note">{{ "{:,}".format(s.more) }} more alerts not listed:
see alerts.csv.</p>{% endif %}
{% else %}<p class="note">No alerts.</p>{% endif %}
</section>
{% endfor %}

{% if orphans %}<section id="other-charts"><h2>Other charts</h2>
{% for o in orphans %}<figure><img src="data:image/png;base64,{{ o.data }}"
alt="{{ o.name }}"></figure>{% endfor %}</section>{% endif %}
</body>
</html>
"""

_ENV = jinja2.Environment(
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class _Section:
    rule: str
    anchor: str
    line: str
    chart: str
    alerts: list[dict[str, str]] = field(default_factory=list)
    more: int = 0


def _num(v: float | None) -> str:
    """Six significant digits: prices and spreads read as the rule wrote them."""
    return "" if v is None else f"{v:.6g}"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _context(result: BacktestResult, charts: list[Path]) -> dict[str, Any]:
    channels = channels_of(result)
    stats = stats_by_rule(result)
    rules = rule_names(result)
    names = chart_names(rules)
    by_name = {p.name: p for p in charts}
    anchors = {r: "rule-" + names[r].removesuffix(".png") for r in rules}

    rows = []
    for rule in rules:
        st = stats[rule]
        rows.append(
            {
                "rule": rule,
                "anchor": anchors[rule],
                "silent": st.fires == 0 and st.clears == 0,
                "fires": st.fires,
                "clears": st.clears,
                "firing": human_duration(st.firing_ms),
                "longest": human_duration(st.longest_ms),
                "flaps": st.flaps,
                "per_week": f"{st.per_week:.1f}",
                "per_channel": [st.messages.get(c, 0) for c in channels],
                "held": held_summary(st.suppressed),
            }
        )

    kinds: dict[str, Counter[str]] = {}
    carried: dict[str, set[str]] = {}
    for m in result.messages:
        kinds.setdefault(m.channel, Counter())[m.kind] += 1
        carried.setdefault(m.channel, set()).update(m.alert_ids)
    held = held_by_channel(result)
    channel_rows = [
        {
            "channel": c,
            "total": sum(kinds.get(c, Counter()).values()),
            "alert": kinds.get(c, Counter())["alert"],
            "group": kinds.get(c, Counter())["group"],
            "digest": kinds.get(c, Counter())["digest"],
            "carried": len(carried.get(c, ())),
            "held": held_summary({c: held[c]}) if c in held else "",
        }
        for c in sorted(set(kinds) | set(held))
    ]

    sent = alert_channels(result)
    held_of = alert_held(result)
    per_rule: dict[str, list[dict[str, str]]] = {r: [] for r in rules}
    counts: Counter[str] = Counter()
    for a in result.alerts:
        counts[a.rule] += 1
        if counts[a.rule] > MAX_ALERT_ROWS:
            continue
        state = f"reminder {a.repeat}" if a.repeat else a.state
        instance = ", ".join(f"{k}={a.labels[k]}" for k in sorted(a.labels))
        per_rule[a.rule].append(
            {
                "time": ny_time(a.ts_ms, seconds=True),
                "state": state,
                "css": "reminder" if a.repeat else a.state,
                "instance": instance,
                "value": _num(a.value),
                "threshold": _num(a.threshold),
                "summary": a.summary,
                "channels": ", ".join(sent.get(a.id, [])) or "—",
                "held": ", ".join(
                    f"{h.channel}: {outcome_word(h.outcome)}" for h in held_of.get(a.id, [])
                ),
            }
        )

    sections = []
    for rule in rules:
        st = stats[rule]
        path = by_name.pop(names[rule], None)
        line = (
            f"{plural(st.fires, 'fire')}, {plural(st.clears, 'clear')}, "
            f"{human_duration(st.firing_ms)} firing (longest {human_duration(st.longest_ms)}), "
            f"{plural(st.flaps, 'flap')}, {st.per_week:.1f} alerts/week"
        )
        sent_to = ", ".join(f"{c} {n}" for c, n in sorted(st.messages.items()))
        if sent_to:
            line += f" · messages: {sent_to}"
        if st.suppressed:
            line += f" · held: {held_summary(st.suppressed)}"
        sections.append(
            _Section(
                rule=rule,
                anchor=anchors[rule],
                line=line,
                chart=_b64(path) if path is not None else "",
                alerts=per_rule[rule],
                more=max(counts[rule] - MAX_ALERT_ROWS, 0),
            )
        )

    return {
        "css": Markup(_CSS),
        "range": range_text(result),
        "ticks": result.ticks,
        "headlines": result.headlines,
        "n_alerts": len(result.alerts),
        "n_messages": len(result.messages),
        "ignored": ignored_summary(result.ignored),
        "inputs": result.inputs,
        "channels": channels,
        "rows": rows,
        "notes": footer_lines(result, held_split=False),
        "channel_rows": channel_rows,
        "sections": sections,
        "orphans": [{"name": p.name, "data": _b64(p)} for p in by_name.values()],
    }


def render_report(result: BacktestResult, charts: list[Path]) -> str:
    """The report's HTML text (charts read from `charts`, matched to rules by file name as
    `charts.chart_names` makes them; a chart matching no rule is shown at the end)."""
    return _ENV.from_string(_TEMPLATE).render(_context(result, charts))


def write_report(result: BacktestResult, out_dir: Path | str, charts: list[Path]) -> Path:
    """Write `out_dir/report.html` (creating `out_dir`); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(render_report(result, charts), encoding="utf-8")
    return path
