"""Where callers go and where they give up: the journal summed up as a table, CSV or an HTML page."""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.flow.model import Flow
from ivr.store.spreadsheet import rows_to_csv
from ivr.store.tables import allowance_audit, callback_attempts, journal, utc

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class Report:
    """The figures of a period."""

    since: datetime | None
    until: datetime | None
    calls: int = 0
    anonymous: int = 0
    by_branch: Counter[str] = field(default_factory=Counter)
    ends: Counter[str] = field(default_factory=Counter)
    abandoned_at: Counter[str] = field(default_factory=Counter)
    after_hours: dict[str, Counter[tuple[int, int]]] = field(default_factory=dict)  # schedule -> (weekday, hour)
    second_opinions: Counter[str] = field(default_factory=Counter)  # grant, refuse, release
    transfers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (contact, outcome)
    requests: Counter[str] = field(default_factory=Counter)
    revisions: Counter[str] = field(default_factory=Counter)  # the flow revision calls were on
    callbacks: Counter[str] = field(default_factory=Counter)  # call-back attempts placed, by outcome

    def rows(self) -> list[tuple[str, str, int]]:
        """Every figure as (section, label, count), the shape of the CSV."""
        out = [("calls", "all", self.calls), ("calls", "anonymous (psychologist)", self.anonymous)]
        out += [("branch", k, v) for k, v in self.by_branch.most_common()]
        out += [("ended", k, v) for k, v in self.ends.most_common()]
        out += [("abandoned at", k, v) for k, v in self.abandoned_at.most_common()]
        for schedule, cells in sorted(self.after_hours.items()):
            out += [(f"after hours: {schedule}", f"{WEEKDAYS[d]} {h:02d}:00", v) for (d, h), v in sorted(cells.items())]
        out += [("second opinion", k, v) for k, v in sorted(self.second_opinions.items())]
        out += [("transfer", f"{c}: {o}", v) for (c, o), v in sorted(self.transfers.items())]
        out += [("request", k, v) for k, v in sorted(self.requests.items())]
        out += [("flow revision", k, v) for k, v in self.revisions.most_common()]
        out += [("call-back attempts", k, v) for k, v in self.callbacks.most_common()]
        return out


def build(conn: Connection, flow: Flow, since: datetime | None, until: datetime | None) -> Report:
    """Sum up the journal and the allowance audit between `since` and `until`."""
    zone = ZoneInfo(flow.settings.timezone)
    report = Report(since, until)
    main = flow.main_menu
    key_of = {o.to: o.key for o in main.options} if main is not None else {}
    query = sa.select(journal)
    audit = sa.select(allowance_audit.c.action)
    if since is not None:
        query = query.where(journal.c.started_at >= utc(since))
        audit = audit.where(allowance_audit.c.at >= utc(since))
    if until is not None:
        query = query.where(journal.c.started_at < utc(until))
        audit = audit.where(allowance_audit.c.at < utc(until))
    for row in conn.execute(query):
        report.calls += 1
        if row.anonymous:
            report.anonymous += 1
            continue
        report.revisions[row.revision or "(before revisions)"] += 1
        branch = row.branch or "(no choice made)"
        report.by_branch[f"{key_of[branch]}: {branch}" if branch in key_of else branch] += 1
        report.ends[row.end or "in progress"] += 1
        if row.end == "abandoned" and row.last_node:
            report.abandoned_at[row.last_node] += 1
        for fact in json.loads(row.facts or "[]"):
            if fact["type"] == "closed":
                moment = datetime.fromisoformat(fact["at"]).astimezone(zone)
                cells = report.after_hours.setdefault(fact["schedule"], Counter())
                cells[(moment.weekday(), moment.hour)] += 1
            elif fact["type"] == "dial":
                report.transfers[(fact["contact"], fact["outcome"])] += 1
            elif fact["type"] == "request":
                report.requests[fact["kind"]] += 1
    for (action,) in conn.execute(audit):
        report.second_opinions[action] += 1
    attempts = sa.select(callback_attempts.c.outcome)
    if since is not None:
        attempts = attempts.where(callback_attempts.c.placed_at >= utc(since))
    if until is not None:
        attempts = attempts.where(callback_attempts.c.placed_at < utc(until))
    for (outcome,) in conn.execute(attempts):
        report.callbacks[outcome or "in progress"] += 1
    return report


def table(report: Report) -> str:
    """A plain-text report for a terminal."""
    lines = [_period(report)]
    section = None
    for name, label, count in report.rows():
        if name != section:
            lines.append(f"\n{name}")
            section = name
        lines.append(f"  {label:<48} {count:>6}")
    return "\n".join(lines) + "\n"


def to_csv(report: Report) -> str:
    """section,label,count rows."""
    return rows_to_csv([("section", "label", "count"), *report.rows()])


def _period(report: Report) -> str:
    return period_of(report.since, report.until)


def period_of(since_at: datetime | None, until_at: datetime | None) -> str:
    """The words for a report's period."""
    since = since_at.date().isoformat() if since_at else "the beginning"
    until = until_at.date().isoformat() if until_at else "now"
    return f"Calls from {since} until {until}"


def bars(title: str, items: list[tuple[str, int]], colour: str = "#2f6fb0") -> str:
    if not items:
        return f"<section><h2>{html.escape(title)}</h2><p class=empty>No calls.</p></section>"
    top = max(count for _, count in items) or 1
    height = 26 * len(items) + 10
    parts = [
        f'<svg role="img" aria-label="{html.escape(title)}" width="760" height="{height}" viewBox="0 0 760 {height}">'
    ]
    for i, (label, count) in enumerate(items):
        y = 10 + 26 * i
        width = max(2, round(420 * count / top))
        parts.append(f'<text x="0" y="{y + 14}" class="label">{html.escape(label[:44])}</text>')
        parts.append(f'<rect x="300" y="{y}" width="{width}" height="18" rx="3" fill="{colour}"/>')
        parts.append(f'<text x="{306 + width}" y="{y + 14}" class="count">{count}</text>')
    parts.append("</svg>")
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


def _heatmap(title: str, cells: Counter[tuple[int, int]]) -> str:
    top = max(cells.values(), default=0) or 1
    parts = [f'<svg role="img" aria-label="{html.escape(title)}" width="760" height="200" viewBox="0 0 760 200">']
    for hour in range(24):
        parts.append(f'<text x="{52 + hour * 29}" y="12" class="axis">{hour:02d}</text>')
    for day, name in enumerate(WEEKDAYS):
        y = 20 + day * 24
        parts.append(f'<text x="0" y="{y + 16}" class="axis">{name}</text>')
        for hour in range(24):
            count = cells.get((day, hour), 0)
            shade = 0.08 + 0.92 * count / top if count else 0.04
            parts.append(
                f'<rect x="{48 + hour * 29}" y="{y}" width="27" height="22" fill="#c0392b" fill-opacity="{shade:.2f}">'
                f"<title>{name} {hour:02d}:00 — {count}</title></rect>"
            )
            if count:
                parts.append(f'<text x="{52 + hour * 29}" y="{y + 15}" class="cell">{count}</text>')
    parts.append("</svg>")
    return f"<section><h2>{html.escape(title)}</h2>{''.join(parts)}</section>"


_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:820px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem}
.figures{display:flex;gap:1rem;flex-wrap:wrap}.figures div{background:#f3f6fa;padding:.7rem 1rem;border-radius:8px}
.figures b{display:block;font-size:1.6rem}svg text{font:12px system-ui,sans-serif;fill:#222}.empty{color:#777}
"""


def to_html(report: Report, title: str) -> str:
    """One self-contained page with inline SVG charts: no scripts, no fonts, nothing fetched."""
    granted = report.second_opinions.get("grant", 0)
    refused = report.second_opinions.get("refuse", 0)
    figures = [
        ("calls", report.calls),
        ("anonymous", report.anonymous),
        ("second opinions granted", granted),
        ("refused", refused),
    ]
    sections = [
        bars("Calls by branch (first choice in the main menu)", report.by_branch.most_common()),
        bars("Where callers hung up while waiting", report.abandoned_at.most_common(), "#c0392b"),
        bars("How calls ended", report.ends.most_common(), "#6c5ce7"),
        bars("Transfer outcomes", [(f"{c}: {o}", v) for (c, o), v in sorted(report.transfers.items())], "#16a085"),
        bars("Requests registered", sorted(report.requests.items()), "#d68910"),
        bars("Second opinions", sorted(report.second_opinions.items()), "#8e44ad"),
        bars("Flow revision the calls were on", report.revisions.most_common(), "#7f8c8d"),
        bars("Call-back attempts the hotline placed, by outcome", report.callbacks.most_common(), "#2980b9"),
    ]
    for schedule, cells in sorted(report.after_hours.items()) or [("representative", Counter())]:
        sections.append(_heatmap(f"After-hours demand: {schedule} (weekday × hour)", cells))
    return page(title, _period(report), figures, sections)


def page(title: str, period: str, figures: list[tuple[str, int]], sections: list[str]) -> str:
    """A self-contained HTML page: a title, the period, figures in boxes, then chart sections."""
    boxes = "".join(f"<div><b>{v}</b>{html.escape(k)}</div>" for k, v in figures)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(period)}</p>"
        f'<div class="figures">{boxes}</div>{"".join(sections)}</body></html>\n'
    )
