"""Markdown report with a Recall@K plot (a small hand-written SVG: no plotting dependency)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

from xmodal.eval.harness import EvalResult


def recall_svg(curve: dict[int, float], title: str = "Recall@K", width: int = 480, height: int = 300) -> str:
    left, right, top, bottom = 50, 20, 30, 40
    pw, ph = width - left - right, height - top - bottom
    ks = sorted(curve)
    kmax = max(ks[-1], 2)

    def x(k: int) -> float:
        return left + pw * (k - 1) / (kmax - 1)

    def y(v: float) -> float:
        return top + ph * (1 - v)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    for i in range(6):
        v = i / 5
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    step = max(1, len(ks) // 10)
    for k in ks[::step]:
        parts.append(f'<text x="{x(k):.1f}" y="{top + ph + 16}" text-anchor="middle">{k}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">K</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    pts = " ".join(f"{x(k):.1f},{y(curve[k]):.1f}" for k in ks)
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for k in ks:
        parts.append(f'<circle cx="{x(k):.1f}" cy="{y(curve[k]):.1f}" r="3" fill="#1f77b4"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(result: EvalResult, out_dir: Path, title: str = "xmodal eval") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recall_at_k.svg").write_text(recall_svg(result.recall_curve), encoding="utf-8")
    lines = [
        f"# {title}",
        "",
        f"{result.n_queries} queries, search depth k={result.k}.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {m} | {v:.4f} |" for m, v in result.metrics.items()),
        "",
        "![Recall@K](recall_at_k.svg)",
        "",
    ]
    if result.warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in result.warnings), ""]
    worst = sorted(result.per_query.items(), key=lambda kv: (kv[1].get("mrr@10", 0.0), kv[0]))[:10]
    if worst:
        lines += ["## Hardest queries (lowest MRR@10)", "", "| query | MRR@10 | Recall@10 |", "|---|---|---|"]
        for q, m in worst:
            label = _cell(result.labels.get(q, q))
            lines.append(f"| {label} | {m.get('mrr@10', 0):.3f} | {m.get('recall@10', 0):.3f} |")
        lines.append("")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    return path


def _cell(text: str, limit: int = 80) -> str:
    """One markdown table cell: one line, pipes escaped, long queries cut."""
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")
