import time

project = "evaldemo-interrupted"
copyright = "2026, the sphinx-evaldemo tests"
version = release = "1.0"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 2
evaldemo_cache_dir = "cache"


def setup(app):
    # reading lasts long enough for the test to interrupt it
    app.connect("source-read", lambda app, docname, source: time.sleep(0.8))
