"""Rules plot_sampling, plot_runtime and report_landing: the report's figures, tables and
first screen."""
