project = "evaldemo-cache"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
