project = "evaldemo-werror"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
