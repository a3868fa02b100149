"""The earn calculation, in one place behind a small interface the rule engine will replace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loyalty.programs.schemas import ProgramDefinition


@dataclass(frozen=True, slots=True)
class EarnCalculator:
    """Whole blocks only: 250,000 VND at 10 points per 100,000 earns 20."""

    rates: dict[str, tuple[int, int]]  # store kind -> (points, per_amount)

    @classmethod
    def from_program(cls, program: ProgramDefinition) -> EarnCalculator:
        return cls({kind: (rate.points, rate.per_amount) for rate in program.earn for kind in rate.store_kinds})

    def points_for(self, store_kind: str, amount: int) -> int:
        rate = self.rates.get(store_kind)
        if rate is None or amount <= 0:
            return 0
        points, per_amount = rate
        return (amount // per_amount) * points

    def points_for_many(
        self, store_kinds: npt.NDArray[np.str_], amounts: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """Vectorised twin of points_for, for imports and simulations."""
        result = np.zeros(len(amounts), dtype=np.int64)
        positive = np.maximum(amounts, 0)
        for kind, (points, per_amount) in self.rates.items():
            mask = store_kinds == kind
            result[mask] = (positive[mask] // per_amount) * points
        return result
