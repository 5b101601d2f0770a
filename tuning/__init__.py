"""digit-tune's searches: the commands grid, optuna and report over four packages (driver, search, resume, results)."""
