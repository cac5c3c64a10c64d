project = "evaldemo-rst"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
