"""The report stage: run records -> pandas -> tables, plots, HTML and PDF. It never trains."""
