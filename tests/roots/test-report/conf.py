# Pages a reader checks at a glance: input lines, claim badges, the report and its totals.
project = "report"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
latex_documents = [("index", "report.tex", "report", "tests", "howto")]
