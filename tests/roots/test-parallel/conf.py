project = "evaldemo-parallel"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 2
