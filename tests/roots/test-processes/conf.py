"""A project with another extension (this conf.py) that can fail the build on purpose.

``processes_boom`` names the event at which it raises; the handlers run after
sphinx_evaldemo's (priority 900 against the default 500).
"""

project = "evaldemo-processes"
extensions = ["sphinx_evaldemo"]
evaldemo_workers = 1

BOOM_EVENTS = ("env-before-read-docs", "doctree-read", "env-updated")


def _handler(event):
    def boom(app, *args):
        if app.config.processes_boom == event:
            raise RuntimeError(f"boom in {event}, raised by another extension")

    return boom


def setup(app):
    app.add_config_value("processes_boom", "", "env", types=(str,))
    for event in BOOM_EVENTS:
        app.connect(event, _handler(event), priority=900)
