project = "evaldemo-equality"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1
evaldemo_details = "full"  # every consumer of the equality on the page
