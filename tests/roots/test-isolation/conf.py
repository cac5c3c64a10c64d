project = "evaldemo-isolation"
extensions = ["sphinx_evaldemo"]
# one worker, so the examples run one after another in the same process
evaldemo_workers = 1
