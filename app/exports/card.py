"""The dataset card: a Hugging Face style README.md with YAML front matter, written from one build's facts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Hugging Face's size buckets, by number of rows.
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
FORMAT_TEXT = {
    "preference": "pairwise preferences with an explicit prompt (`prompt`, `chosen`, `rejected`), as TRL's "
    "reward and DPO trainers read them",
    "preference-implicit": "pairwise preferences with the prompt inside `chosen` and `rejected`",
    "kto": "unpaired judgements (`prompt`, `completion`, `label`) for KTO training",
    "ratings": "per-response rating summaries (mean, standard deviation and count per criterion)",
    "raw": "every counted annotation, with raters replaced by stable pseudonyms",
}
DROP_TEXT = {
    "too_few_annotations": "items with fewer annotations than the minimum",
    "unresolved": "items whose vote was tied (no majority)",
    "low_agreement": "items below the agreement threshold",
    "ties": "items judged a tie or both bad",
    "flagged": "items a rater flagged as unsafe or as a broken prompt",
    "duplicates": "rows repeating an earlier (prompt, chosen, rejected)",
}


@dataclass(frozen=True)
class CardFacts:
    project_name: str
    project_description: str
    format: str
    file_type: str
    files: Sequence[tuple[str, str]]  # (split, file name)
    counts: Mapping[str, Any]
    options: Mapping[str, Any]
    question: str | None
    question_kind: str | None
    agreement: Mapping[str, Any] | None
    license: str = "other"


def size_category(rows: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>100M"


def _yaml_string(text: str) -> str:
    # JSON strings are valid YAML scalars and escape whatever a project name holds.
    return json.dumps(text, ensure_ascii=False)


def front_matter(facts: CardFacts) -> str:
    rows = int(facts.counts.get("rows_total", 0))
    lines = [
        "---",
        f"license: {facts.license}",
        f"pretty_name: {_yaml_string(facts.project_name)}",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- rlhf",
        "- preference",
        "- dpo",
        "size_categories:",
        f"- {size_category(rows)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split, name in facts.files:
        lines += [f"  - split: {split}", f"    path: {name}"]
    return "\n".join([*lines, "---"])


def _number(value: Any) -> str:
    if value is None:
        return "undefined"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _agreement_lines(facts: CardFacts) -> list[str]:
    figures = facts.agreement
    if not figures:
        return ["Agreement figures are given for the preference and ranking questions only."]
    level = figures.get("level", "nominal")
    lines = [
        f"Over every counted annotation of `{facts.question}` (before the cleaning filters):",
        "",
    ]
    for key, title in (
        ("percent_agreement", "Percent agreement"),
        ("alpha", f"Krippendorff's alpha ({level})"),
    ):
        stat = figures.get(key) or {}
        value = stat.get("value")
        reason = f" ({stat.get('reason')})" if value is None and stat.get("reason") else ""
        lines.append(f"- {title}: {_number(value)}{reason}, over {stat.get('n_units', 0)} items")
    return lines


def _filter_lines(facts: CardFacts) -> list[str]:
    o = facts.options
    lines = [
        "- Always left out: gold and training items, and annotations of raters an admin excluded.",
        f"- At least {o.get('min_annotations', 1)} annotation(s) per item.",
    ]
    if facts.format not in ("ratings", "raw"):
        lines.append(f"- Minimum item agreement: {o.get('min_agreement', 0)}.")
        lines.append(f"- Ties and 'both bad' outcomes: {'kept' if o.get('include_ties') else 'dropped'}.")
    if facts.format != "raw":
        flagged = "kept" if o.get("include_flagged") else "dropped"
        lines.append(f"- Items flagged unsafe or as a broken prompt: {flagged}.")
        lines.append("- Duplicate rows removed.")
    return lines


def _count_lines(facts: CardFacts) -> list[str]:
    c = facts.counts
    lines = [
        "| | count |",
        "|---|---:|",
        f"| items with counted annotations | {c.get('items', 0)} |",
        f"| counted annotations | {c.get('annotations', 0)} |",
        f"| raters | {c.get('raters', 0)} |",
    ]
    for split, name in facts.files:
        lines.append(f"| rows in `{name}` ({split}) | {c.get('rows', {}).get(split, 0)} |")
    for key, count in sorted(c.get("dropped", {}).items()):
        lines.append(f"| dropped: {DROP_TEXT.get(key, key)} | {count} |")
    return lines


def _load_lines(facts: CardFacts) -> list[str]:
    builder = (
        "parquet" if facts.file_type == "parquet" else facts.file_type if facts.file_type == "csv" else "json"
    )
    files = ", ".join(f'"{split}": "{name}"' for split, name in facts.files)
    return [
        "```python",
        "from datasets import load_dataset",
        "",
        f'dataset = load_dataset("{builder}", data_files={{{files}}})',
        "```",
    ]


def _aggregation_text(export_format: str, method: str) -> str:
    if export_format == "raw":
        return "none: every counted annotation is a row"
    if export_format == "ratings":
        return "none: per-response rating summaries"
    return method


def dataset_card(facts: CardFacts) -> str:
    """The README.md of an export; it holds no build time, so the same request gives the same bytes."""
    o = facts.options
    versions = ", ".join(
        f"v{v} ({n} annotations)" for v, n in facts.counts.get("guidelines_versions", {}).items()
    )
    aggregation = o.get("aggregation", "majority")
    method = (
        "Dawid-Skene (per project and question; classes: each response position, tie, both bad; each "
        "rater's confusion matrix starts from one pseudo-vote on every right answer); the item agreement is "
        "the posterior probability of the chosen class"
        if aggregation == "dawid-skene"
        else "majority vote; a tied vote leaves the item unresolved and it is dropped; the item agreement is "
        "the majority's share of the votes"
    )
    if facts.question_kind == "ranking":
        method = f"mean rank position over raters; pairs: {o.get('pairs', 'all')}"
    description = facts.project_description.strip() or "(no description)"
    body = [
        f"# {facts.project_name}",
        "",
        description,
        "",
        "## What this is",
        "",
        f"Human preference judgements collected with PrefHub: {FORMAT_TEXT.get(facts.format, facts.format)}.",
        f"Question: `{facts.question}`." if facts.question else "",
        f"Annotations were made under guidelines version(s): {versions or 'none'}.",
        "",
        "## Counts",
        "",
        *_count_lines(facts),
        "",
        "## Agreement",
        "",
        *_agreement_lines(facts),
        "",
        "## How it was cleaned",
        "",
        *_filter_lines(facts),
        "",
        f"Aggregation: {_aggregation_text(facts.format, method)}.",
        f"Raters: {facts.counts.get('raters', 0)}.",
        "",
        "## How to load it",
        "",
        *_load_lines(facts),
        "",
    ]
    return front_matter(facts) + "\n\n" + "\n".join(line for line in body if line is not None) + "\n"
