project = "evaldemo-report-files"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_report_files = ["json", "junit"]  # a list is taken as a tuple
