"""What a search explores and how: the space, its budgets and limits, halving, Optuna's sampler, study and searcher."""
