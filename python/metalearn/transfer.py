"""Transfer learning (``metalearn transfer``): pretrain on a source (or load a trunk), then
compare scratch, linear probe, fine-tuning and freeze-then-fine-tune on a target for
several label budgets, mean ± 95% CI over seeds."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _native
from .mtl import _source

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["run"]


def run(
    config: Union[PathLike, Mapping[str, Any]],
    *,
    progress: bool = False,
    threads: Optional[int] = None,
) -> Dict[str, Any]:
    """Runs a transfer config (a TOML path such as ``configs/transfer/mnist-to-fashion.toml``,
    or a dict laid out like it). Returns the report as a dict: ``runs`` (one record per
    strategy, budget and seed), ``summary`` (mean ± CI per strategy and budget) and
    ``table``, the summary flattened into records for ``pandas.DataFrame(report["table"])``:
    ``strategy``, ``budget``, ``accuracy``, ``accuracy_ci95``, ``gain``, ``gain_ci95``,
    ``seeds``. The GIL is released while it runs."""
    from . import _plain  # noqa: PLC0415

    path, text = _source(config, _plain)
    report = json.loads(_native.transfer_run(path, text, progress, threads))
    report["table"] = _table(report.get("summary", []))
    return report


def _table(summary: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    rows = []
    for r in summary:
        gain = r.get("gain") or {}
        rows.append(
            {
                "strategy": r["strategy"],
                "budget": r["budget"],
                "accuracy": r["accuracy"]["mean"],
                "accuracy_ci95": r["accuracy"]["ci95"],
                "gain": gain.get("mean"),
                "gain_ci95": gain.get("ci95"),
                "seeds": r["accuracy"]["n"],
            }
        )
    return rows
