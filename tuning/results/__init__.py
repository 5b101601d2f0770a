"""A search's results: the trial tables and their files, reading Ray's results, summaries, plots and figures."""
