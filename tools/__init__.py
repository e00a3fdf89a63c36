"""Tools apart from the run-time loops: the results report, the speed benchmark, the t-SNE plot."""
