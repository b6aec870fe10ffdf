# ruff: noqa: E501, RUF001 - HTML reads better unwrapped, and dashes are typography here
"""The dashboard's pages: Jinja2 templates kept as strings (no template files to package).

Every page extends ``base.html``; ``url(path)`` prefixes the mount point, and ``csrf`` is the
session's CSRF token for forms. Autoescaping is on.
"""

from __future__ import annotations

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · {{ title }}</title>
<style>
  :root { --fg: #1d2433; --muted: #667085; --line: #e4e7ec; --bg: #f7f8fa; --accent: #3559e0;
          --ok: #127a3e; --bad: #b42318; --warn: #a15c07; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--fg); background: var(--bg); }
  header { background: #111827; color: #fff; padding: 0 24px; display: flex; align-items: center;
           gap: 28px; height: 52px; }
  header .brand { font-weight: 700; letter-spacing: .2px; }
  header nav a { color: #cbd5e1; text-decoration: none; margin-right: 18px; padding: 15px 0; }
  header nav a.active, header nav a:hover { color: #fff; border-bottom: 2px solid #7c9cff; }
  header .mode { margin-left: auto; font-size: 12px; color: #cbd5e1; }
  main { max-width: 1200px; margin: 24px auto; padding: 0 24px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 28px 0 10px; }
  .sub { color: var(--muted); margin: 0 0 18px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
  .card.pad { padding: 16px 18px; }
  table { width: 100%; border-collapse: collapse; }
  th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .4px;
       color: var(--muted); background: #fafbfc; }
  th, td { padding: 9px 14px; border-bottom: 1px solid var(--line); vertical-align: top; }
  tr:last-child td { border-bottom: none; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
  a { color: var(--accent); }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
           background: #eef2f6; color: var(--muted); }
  .badge.ok { background: #e7f6ec; color: var(--ok); }
  .badge.bad { background: #fdecea; color: var(--bad); }
  .badge.warn { background: #fdf3e3; color: var(--warn); }
  .when { color: var(--muted); font-size: 12px; }
  .flash { padding: 10px 14px; border-radius: 8px; margin-bottom: 16px; }
  .flash.error { background: #fdecea; color: var(--bad); border: 1px solid #f5c2bd; }
  .flash.info { background: #e8eefc; color: #24408f; border: 1px solid #c7d4fa; }
  dl.facts { display: grid; grid-template-columns: 170px 1fr; margin: 0; }
  dl.facts dt { color: var(--muted); padding: 7px 0; border-bottom: 1px solid var(--line); }
  dl.facts dd { margin: 0; padding: 7px 0; border-bottom: 1px solid var(--line); }
  form.inline { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; }
  form.inline label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted);
                      gap: 3px; }
  input, select { font: inherit; padding: 6px 8px; border: 1px solid #cfd4dc; border-radius: 6px;
                  background: #fff; }
  button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent);
           background: var(--accent); color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button.danger { background: #fff; color: var(--bad); border-color: #f0a9a2; }
  .row { display: flex; gap: 16px; flex-wrap: wrap; }
  .row > .card { flex: 1 1 320px; }
  .pager { display: flex; justify-content: space-between; align-items: center; padding: 10px 14px;
           color: var(--muted); }
  .empty { padding: 18px; color: var(--muted); text-align: center; }
</style>
</head>
<body>
<header>
  <span class="brand">celery-pyncette</span>
  <nav>
    <a href="{{ url('/') }}" class="{{ 'active' if section == 'tasks' }}">Tasks</a>
    <a href="{{ url('/strikes') }}" class="{{ 'active' if section == 'strikes' }}">Strikes</a>
    <a href="{{ url('/beats') }}" class="{{ 'active' if section == 'beats' }}">Beats</a>
    <a href="{{ url('/quarantined') }}" class="{{ 'active' if section == 'quarantined' }}">Quarantined</a>
  </nav>
  <span class="mode">{{ 'read-write' if writable else 'read-only' }} · {{ now_text }}</span>
</header>
<main>
{% if error %}<div class="flash error" role="alert">{{ error }}</div>{% endif %}
{% if notice %}<div class="flash info" role="status">{{ notice }}</div>{% endif %}
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

MACROS = """
{% macro when(value) -%}
  {%- if value -%}<span class="mono">{{ value.strftime('%Y-%m-%d %H:%M:%S') }}</span>
  <span class="when">{{ relative(value) }}</span>{%- else -%}<span class="when">–</span>{%- endif -%}
{%- endmacro %}
{% macro status(value) -%}
  {%- if value == 'success' -%}<span class="badge ok">success</span>
  {%- elif value -%}<span class="badge bad">{{ value }}</span>
  {%- else -%}<span class="when">never ran</span>{%- endif -%}
{%- endmacro %}
{% macro csrf_field() -%}<input type="hidden" name="csrf_token" value="{{ csrf }}">{%- endmacro %}
"""

TASKS = """{% extends "base.html" %}{% from "macros.html" import when with context %}
{% block title %}Tasks{% endblock %}
{% block content %}
<h1>Tasks</h1>
<p class="sub">{{ tasks|length }} task(s) · {{ alive }} beat(s) alive · {{ strike_count }} strike(s)</p>
<div class="card">
<table id="tasks">
  <thead><tr><th>Task</th><th>Kind</th><th>Schedule</th><th class="num">Instances</th>
  <th>Next run</th><th>Mode</th><th>Enabled</th></tr></thead>
  <tbody>
  {% for t in tasks %}
  <tr>
    <td><a href="{{ url('/tasks/' ~ q(t.name)) }}">{{ t.name }}</a>
      {% if t.celery_name != t.name %}<div class="when">runs {{ t.celery_name }}</div>{% endif %}</td>
    <td><span class="badge">{{ t.kind }}</span>
      {% if t.partition_count > 1 %}<div class="when">{{ t.partition_count }} partitions</div>{% endif %}</td>
    <td class="mono">{{ t.schedule or ('per instance' if t.kind == 'dynamic' else '–') }}</td>
    <td class="num">{{ t.instances }}</td>
    <td>{{ when(t.next_run) }}</td>
    <td class="when">{{ t.execution_mode|lower }}{% if t.execution_mode == 'AT_LEAST_ONCE' %}, on failure {{ t.failure_mode|lower }}{% endif %}</td>
    <td>{% if t.enabled %}<span class="badge ok">yes</span>{% else %}<span class="badge warn">no</span>{% endif %}</td>
  </tr>
  {% else %}
  <tr><td colspan="7" class="empty">No tasks are declared in this app.</td></tr>
  {% endfor %}
  </tbody>
</table>
</div>
{% endblock %}
"""

TASK = """{% extends "base.html" %}{% from "macros.html" import when, status, csrf_field with context %}
{% block title %}{{ task.name }}{% endblock %}
{% block content %}
<h1>{{ task.name }}</h1>
<p class="sub">{{ task.kind }} task · {{ task.instances }} instance(s){% if task.schedule %} · {{ task.schedule }}{% endif %}</p>
{% if state %}
<div class="card pad">
<dl class="facts">
  <dt>Next run</dt><dd id="next-run">{{ when(state.scheduled_at) }}</dd>
  <dt>Last run</dt><dd>{{ when(state.last_run_at) }} {{ status(state.last_status) }}</dd>
  <dt>Locked until</dt><dd>{{ when(state.locked_until) }} {% if state.locked_by %}<span class="when">by {{ state.locked_by }}</span>{% endif %}</dd>
</dl>
</div>
{% elif task.kind == 'static' %}
<div class="card empty">Not in the store yet: beat writes it when it starts.</div>
{% endif %}
{% if writable and task.kind == 'static' and task.enabled %}
<div class="card pad">
<form class="inline" method="post" id="run-now" action="{{ url('/tasks/' ~ q(task.name) ~ '/run') }}">
  {{ csrf_field() }}
  <label><span>Run even while running</span><input type="checkbox" name="force" value="1"></label>
  <button type="submit">Run now</button>
</form>
<p class="when">One extra run, due now; the next run stays where it is.</p>
</div>
{% endif %}
{% if task.kind == 'dynamic' %}
<h2>Instances</h2>
<form class="inline" method="get" action="{{ url('/tasks/' ~ q(task.name)) }}" style="margin-bottom:12px">
  <label>Instance name starts with<input type="search" name="prefix" value="{{ prefix }}" placeholder="e.g. user-" id="search"></label>
  <button class="secondary" type="submit">Search</button>
  {% if prefix %}<a href="{{ url('/tasks/' ~ q(task.name)) }}">clear</a>{% endif %}
</form>
<div class="card">
<table id="instances">
  <thead><tr><th>Instance</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Arguments</th></tr></thead>
  <tbody>
  {% for s in states %}
  <tr>
    <td><a href="{{ url('/tasks/' ~ q(task.name) ~ '/instances/' ~ q(s.instance)) }}">{{ s.instance }}</a>
      {% if task.partition_count > 1 %}<div class="when">partition {{ s.partition }}</div>{% endif %}</td>
    <td class="mono">{{ timing(s) }}</td>
    <td>{{ when(s.scheduled_at) }}</td>
    <td>{{ status(s.last_status) }}</td>
    <td class="mono">{{ args_text(s.args) }}</td>
  </tr>
  {% else %}
  <tr><td colspan="5" class="empty">{% if prefix %}No instance name starts with “{{ prefix }}”.{% else %}No instances scheduled.{% endif %}</td></tr>
  {% endfor %}
  </tbody>
</table>
<div class="pager">
  <span>{{ states|length }} shown{% if cursor %} · <a href="{{ url('/tasks/' ~ q(task.name)) }}{% if prefix %}?prefix={{ q(prefix) }}{% endif %}">first page</a>{% endif %}</span>
  {% if next_cursor %}<a id="next-page" href="{{ url('/tasks/' ~ q(task.name)) }}?cursor={{ q(next_cursor) }}{% if prefix %}&amp;prefix={{ q(prefix) }}{% endif %}">next page →</a>{% endif %}
</div>
</div>
{% if writable %}
<h2>Schedule an instance</h2>
<div class="card pad">
<form class="inline" method="post" action="{{ url('/tasks/' ~ q(task.name) ~ '/schedule') }}">
  {{ csrf_field() }}
  <label>Instance<input name="instance" required placeholder="user-42"></label>
  {% include "timing_fields.html" %}
  <label>Arguments (JSON object)<input name="args" value="{}" class="mono" size="24"></label>
  <button type="submit">Schedule</button>
</form>
</div>
{% endif %}
{% endif %}
{% endblock %}
"""

TIMING_FIELDS = """
  <label>Cron<input name="cron" placeholder="0 9 * * 1-5" class="mono" size="16"></label>
  <label>or every (seconds)<input name="interval" type="number" min="0" step="any" size="8"></label>
  <label>or once at (UTC, ISO)<input name="at" placeholder="2030-01-01T09:00:00+00:00" size="24"></label>
  <label>Time zone (cron)<input name="timezone" placeholder="UTC" size="14"></label>
"""

INSTANCE = """{% extends "base.html" %}{% from "macros.html" import when, status, csrf_field with context %}
{% block title %}{{ state.instance }} · {{ task.name }}{% endblock %}
{% block content %}
<p class="sub"><a href="{{ url('/tasks/' ~ q(task.name)) }}">{{ task.name }}</a> /</p>
<h1>{{ state.instance }}</h1>
<p class="sub">{{ timing(state) }}</p>
<div class="row">
<div class="card pad">
<dl class="facts">
  <dt>Next run</dt><dd id="next-run" data-at="{{ state.scheduled_at.isoformat() }}">{{ when(state.scheduled_at) }}</dd>
  <dt>Last run</dt><dd id="last-run">{{ when(state.last_run_at) }}</dd>
  <dt>Last status</dt><dd>{{ status(state.last_status) }}</dd>
  <dt>Locked until</dt><dd>{{ when(state.locked_until) }}</dd>
  <dt>Locked by</dt><dd class="mono">{{ state.locked_by or '–' }}</dd>
  <dt>Partition</dt><dd>{{ state.partition }}</dd>
  {% if state.max_runs %}<dt>Runs left</dt><dd id="runs-left">{{ state.runs_left }} of {{ state.max_runs }}</dd>{% endif %}
  <dt>Arguments</dt><dd><code>{{ args_text(state.args) }}</code></dd>
</dl>
</div>
{% if writable %}
<div class="card pad">
<h2 style="margin-top:0">Run now</h2>
<form class="inline" method="post" id="run-now" action="{{ url('/tasks/' ~ q(task.name) ~ '/instances/' ~ q(state.instance) ~ '/run') }}">
  {{ csrf_field() }}
  <label><span>Run even while running</span><input type="checkbox" name="force" value="1"></label>
  <button type="submit">Run now</button>
</form>
<p class="when">One extra run, due now; the next run stays where it is.</p>
<h2>Reschedule</h2>
<form class="inline" method="post" id="reschedule" action="{{ url('/tasks/' ~ q(task.name) ~ '/instances/' ~ q(state.instance) ~ '/reschedule') }}">
  {{ csrf_field() }}
  {% include "timing_fields.html" %}
  <label><span>Replace while running</span><input type="checkbox" name="force" value="1"></label>
  <button type="submit">Reschedule</button>
</form>
<p class="when">Arguments are kept. The next run is the first occurrence after now.</p>
<form method="post" action="{{ url('/tasks/' ~ q(task.name) ~ '/instances/' ~ q(state.instance) ~ '/unschedule') }}"
      onsubmit="return confirm('Unschedule this instance?')">
  {{ csrf_field() }}
  <button class="danger" type="submit">Unschedule</button>
</form>
</div>
{% endif %}
</div>
<h2>Recent runs</h2>
<div class="card">
<table id="history">
  <thead><tr><th>Scheduled</th><th>Started</th><th>Finished</th><th>Status</th><th>Worker</th><th>Error</th></tr></thead>
  <tbody>
  {% for run in history %}
  <tr>
    <td>{{ when(run.scheduled_at) }}</td><td>{{ when(run.started_at) }}</td><td>{{ when(run.finished_at) }}</td>
    <td>{{ status(run.status) }}</td><td class="mono">{{ run.worker or '–' }}</td><td class="mono">{{ run.error or '' }}</td>
  </tr>
  {% else %}
  <tr><td colspan="6" class="when">No settled run kept (pyncette_history_size sets how many are).</td></tr>
  {% endfor %}
  </tbody>
</table>
</div>
{% endblock %}
"""

STRIKES = """{% extends "base.html" %}{% from "macros.html" import csrf_field with context %}
{% block title %}Strikes{% endblock %}
{% block content %}
<h1>Strikes</h1>
<p class="sub">A struck occurrence is skipped, not queued; restoring lets the following ones run.</p>
<div class="card">
<table id="strikes">
  <thead><tr><th>Task</th><th>Where</th><th>Reason</th>{% if writable %}<th></th>{% endif %}</tr></thead>
  <tbody>
  {% for s in strikes %}
  <tr>
    <td>{{ s.task or 'any task' }}</td>
    <td class="mono">{% if s.parameter %}{{ s.parameter }} {{ s.operator }} {{ typed(s.value) }}{% else %}every occurrence{% endif %}</td>
    <td class="reason">{{ s.reason or '' }}</td>
    {% if writable %}<td style="text-align:right">
      <form method="post" action="{{ url('/strikes/restore') }}">
        {{ csrf_field() }}
        <input type="hidden" name="task" value="{{ s.task or '' }}">
        <input type="hidden" name="parameter" value="{{ s.parameter or '' }}">
        <input type="hidden" name="operator" value="{{ s.operator or '' }}">
        <input type="hidden" name="value" value="{{ literal(s.value) if s.parameter else '' }}">
        <button class="secondary restore" type="submit">Restore</button>
      </form></td>{% endif %}
  </tr>
  {% else %}
  <tr><td colspan="{{ 4 if writable else 3 }}" class="empty">No strikes: everything runs.</td></tr>
  {% endfor %}
  </tbody>
</table>
</div>
{% if writable %}
<h2>Add a strike</h2>
<div class="card pad">
<form class="inline" method="post" action="{{ url('/strikes') }}" id="add-strike">
  {{ csrf_field() }}
  <label>Task<select name="task">
    <option value="">any task</option>
    {% for name in task_names %}<option value="{{ name }}">{{ name }}</option>{% endfor %}
  </select></label>
  <label>Argument (optional)<input name="parameter" placeholder="customer_id"></label>
  <label>Operator<select name="operator">{% for op in operators %}<option>{{ op }}</option>{% endfor %}</select></label>
  <label>Value (text; int:42, float:2.5, bool:true, json:… for other types)<input name="value" placeholder="12345"></label>
  <label>Reason (optional)<input name="reason" maxlength="500" placeholder="incident 4711"></label>
  <button type="submit">Strike</button>
</form>
</div>
{% endif %}
{% endblock %}
"""

BEATS = """{% extends "base.html" %}{% from "macros.html" import when with context %}
{% block title %}Beats{% endblock %}
{% block content %}
<h1>Beats</h1>
<p class="sub">{% if healthy %}<span class="badge ok">healthy</span>{% else %}<span class="badge bad">unhealthy</span>{% endif %}
 · a beat is stale when it has not reported for {{ stale_after }}</p>
{% for p in problems %}<div class="flash error">{{ p }}</div>{% endfor %}
{% for w in warnings %}<div class="flash info">{{ w }}</div>{% endfor %}
<div class="card">
<table id="beats">
  <thead><tr><th>Beat</th><th>State</th><th>Last report</th><th>Started</th><th>Polls</th></tr></thead>
  <tbody>
  {% for b in beats %}
  <tr>
    <td class="mono">{{ b.owner }}<div class="when">{{ b.hostname }} · pid {{ b.pid }}</div></td>
    <td>{% if b.is_stale(now) %}<span class="badge bad">stale</span>{% else %}<span class="badge ok">alive</span>{% endif %}</td>
    <td>{{ when(b.last_tick) }}</td>
    <td>{{ when(b.started_at) }}</td>
    <td>{% for task, parts in b.partitions.items()|sort %}<div><span class="mono">{{ task }}</span>{% if parts|length > 1 or parts != [0] %} <span class="when">partitions {{ ranges(parts) }}</span>{% endif %}</div>{% else %}–{% endfor %}</td>
  </tr>
  {% else %}
  <tr><td colspan="5" class="empty">No beat has reported. Start one with <code>celery -A proj beat -S pyncette</code>.</td></tr>
  {% endfor %}
  </tbody>
</table>
</div>
<h2>Due backlog</h2>
{% if backlog is none %}
<p><a href="{{ url('/beats') }}?backlog=1" id="count-backlog">Count due instances</a> <span class="when">(reads every stored instance)</span></p>
{% else %}
<div class="card">
<table id="backlog">
  <thead><tr><th>Task</th><th class="num">Due</th><th class="num">Running</th><th>Oldest due</th></tr></thead>
  <tbody>
  {% for b in backlog %}
  <tr><td>{{ b.task }}</td><td class="num">{{ b.due }}</td><td class="num">{{ b.running }}</td><td>{{ when(b.oldest_due) }}</td></tr>
  {% endfor %}
  </tbody>
</table>
</div>
{% endif %}
{% endblock %}
"""

QUARANTINED = """{% extends "base.html" %}{% from "macros.html" import when with context %}
{% block title %}Quarantined{% endblock %}
{% block content %}
<h1>Quarantined</h1>
<p class="sub">Records that cannot be decoded or computed: beat no longer claims them. Schedule the instance again to repair one (a static task's record is rewritten when beat starts), or unschedule it.</p>
<form class="inline" method="get" action="{{ url('/quarantined') }}" style="margin-bottom:14px">
  <label>Task<input name="task" value="{{ task }}"></label>
  <label>Limit<input name="limit" value="{{ limit }}" size="5"></label>
  <button type="submit" class="secondary">Filter</button>
</form>
<div class="card">
<table id="quarantined">
  <thead><tr><th>Task</th><th>Instance</th><th class="num">Partition</th><th>Since</th><th>Reason</th></tr></thead>
  <tbody>
  {% for r in records %}
  <tr>
    <td><a href="{{ url('/tasks/' ~ q(r.task)) }}">{{ r.task }}</a></td>
    <td>{% if r.instance is none %}<span class="when">static</span>{% else %}<a class="mono" href="{{ url('/tasks/' ~ q(r.task) ~ '/instances/' ~ q(r.instance)) }}">{{ r.instance }}</a>{% endif %}</td>
    <td class="num">{{ r.partition }}</td>
    <td>{{ when(r.since) }}</td>
    <td class="mono">{{ r.reason }}</td>
  </tr>
  {% else %}
  <tr><td colspan="5" class="empty">No record is quarantined.</td></tr>
  {% endfor %}
  </tbody>
</table>
{% if more %}<div class="pager">More than {{ limit }} record(s); raise the limit to see them.</div>{% endif %}
</div>
{% endblock %}
"""

MESSAGE = """{% extends "base.html" %}
{% block title %}{{ heading }}{% endblock %}
{% block content %}
<h1>{{ heading }}</h1>
<p class="sub">{{ message }}</p>
{% if login %}
<div class="card pad" style="max-width:420px">
<form class="inline" method="post" action="{{ url('/login') }}">
  <label>Token<input type="password" name="token" autofocus required></label>
  <button type="submit">Sign in</button>
</form>
</div>
{% endif %}
{% endblock %}
"""

TEMPLATES = {
    "base.html": BASE,
    "macros.html": MACROS,
    "tasks.html": TASKS,
    "task.html": TASK,
    "timing_fields.html": TIMING_FIELDS,
    "instance.html": INSTANCE,
    "strikes.html": STRIKES,
    "beats.html": BEATS,
    "quarantined.html": QUARANTINED,
    "message.html": MESSAGE,
}
