project = "evaldemo-faults"
extensions = ["sphinx_evaldemo"]
