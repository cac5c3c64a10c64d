project = "evaldemo-isolation"
extensions = ["sphinx_evaldemo"]
# one example at a time (the tests raise it for the -j 2 build): were processes reused,
# each victim would run in the process its poison just changed
evaldemo_workers = 1
