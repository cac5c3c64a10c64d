project = "evaldemo-display"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
