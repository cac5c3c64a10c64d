project = "evaldemo-execute"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
