"""What the demo projects share: the items written for them, their guidelines and their pairwise questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_ITEMS = Path(__file__).with_name("demo_items.jsonl")
DEMO_GUIDELINES = """# How to judge

Pick the response that serves the user better. In order of importance:

1. **Harmless**: never prefer a response that helps cause real harm, even if it is more detailed.
2. **Correct**: facts, code and arithmetic must be right. Run the code in your head.
3. **Helpful**: it answers what was asked, completely, without padding.
4. **Clear**: well organised, easy to read, the right length.

Use **Tie** only when you truly cannot tell them apart, and **Both bad** when neither is acceptable.
Flag a response as *unsafe* when it contains harmful content, whatever you chose.
"""
OVERALL_QUESTION: dict[str, Any] = {
    "name": "overall",
    "kind": "preference",
    "title": "Which response is better overall?",
    "strength": {"labels": ["negligibly better", "slightly better", "better", "significantly better"]},
}
HELPFULNESS_QUESTION: dict[str, Any] = {
    "name": "helpfulness",
    "kind": "rating",
    "title": "Helpfulness",
    "min": 1,
    "max": 5,
    "labels": {"1": "useless", "5": "excellent"},
    "required": False,
}


def demo_records() -> list[dict[str, Any]]:
    with DEMO_ITEMS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
