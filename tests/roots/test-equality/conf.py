project = "evaldemo-equality"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
