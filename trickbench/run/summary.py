"""The model summary printed at the start of fit, without the noise of a run that counts no FLOPs.

Lightning (2.6) adds a FLOPs column and a "Total FLOPs: 0" line to every summary; it counts FLOPs only for a
module with an `example_input_array`, which no trickbench module sets, so the column is always zeros. This
summary prints the same table and totals as plain text (readable in a SLURM log too), leaving FLOPs out when
nothing was counted. Written here because Lightning's summary has no option to drop the column.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_summary import get_human_readable_count


def summary_text(
    summary_data: list[tuple[str, list[str]]],
    total_parameters: int,
    trainable_parameters: int,
    model_size: float,
    total_training_modes: dict[str, int],
    total_flops: int = 0,
) -> str:
    """The table (one row per layer; Lightning's first column is the row index) and the totals, FLOPs only
    when some were counted."""
    count = lambda n: get_human_readable_count(int(n)).strip()  # noqa: E731
    columns = [(name, list(values)) for name, values in summary_data if total_flops or name != "FLOPs"]
    widths = [max([len(name), *(len(v) for v in values)]) for name, values in columns]
    row = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    lines = [row([name for name, _ in columns]), "-" * (sum(widths) + 3 * (len(widths) - 1))]
    lines += [row(cells) for cells in zip(*(values for _, values in columns))]
    lines += [
        "-" * len(lines[1]),
        f"Trainable params: {count(trainable_parameters)}",
        f"Non-trainable params: {count(total_parameters - trainable_parameters)}",
        f"Total params: {count(total_parameters)}",
        f"Total estimated model params size (MB): {model_size:,.3f}",
        f"Modules in train mode: {total_training_modes.get('train', 0)}",
        f"Modules in eval mode: {total_training_modes.get('eval', 0)}",
    ]
    if total_flops:
        lines.append(f"Total FLOPs: {count(total_flops)}")
    return "\n".join(lines)


class ModelSummary(LightningModelSummary):
    """Lightning's ModelSummary (same `max_depth`), printed by `summary_text` (see the module docstring).

    Args:
        max_depth: depth of submodules listed (1: the module's children); 0 prints nothing
    """

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int = 0,
        **summarize_kwargs: Any,
    ) -> None:
        rank_zero_info(
            summary_text(
                summary_data, total_parameters, trainable_parameters, model_size, total_training_modes, total_flops
            )
        )
