"""Where the real data sets live beside the project, and a skip for machines that lack them."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ALPACA_EVAL = SHARED_DATA / "alpaca_eval_4models.jsonl"
HH_RLHF = SHARED_DATA / "hh_rlhf_harmless_test.jsonl"


def require_shared_data(path: Path) -> Path:
    """Skip the calling test, with the reason, where the real data set is not on this machine."""
    if not path.exists():
        pytest.skip(f"real data set {path.name} is not present beside the project (../shared/data/)")
    return path
