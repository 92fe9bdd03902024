"""The accuracy budget: a workflow over quantize, convert and evaluate (quantize/ does not import it).

Rank the INT8 layers once by SQNR against FP32, then bisect over that ranking for the shortest prefix that,
taken out of INT8 (to bf16 where the CPU has bf16 kernels, else FP32), keeps the top-1 drop within budget.
"""

from int8kit.budget.config import BudgetConfig
from int8kit.budget.fit import BudgetResult, BudgetRound, fit_accuracy_budget

__all__ = ["BudgetConfig", "BudgetResult", "BudgetRound", "fit_accuracy_budget"]
