"""Registration only: the settings, the static files, and each feature's own ``setup``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, articles, config, examples
from .reference import ConfigTableDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.config import Config

STATIC = Path(__file__).parent / "static"


def on_config(app: Sphinx, conf: Config) -> None:
    conf.html_static_path.append(str(STATIC))


def on_builder(app: Sphinx) -> None:
    if app.builder.format == "html":
        app.add_css_file("evaldemo.css")


def setup_extension(app: Sphinx) -> dict[str, Any]:
    """Register the settings, the static files and each feature; start nothing."""
    config.register(app)
    # MyST-NB brings MyST-Parser's settings and registers ``.md`` itself; setting up
    # myst_parser as well would register ``.md`` twice, whichever comes first
    uses_nb = "myst_nb" in app.extensions or "myst_nb" in app.config.extensions
    app.setup_extension("myst_nb" if uses_nb else "myst_parser")
    app.connect("config-inited", on_config)
    app.connect("builder-inited", on_builder)
    app.add_directive("evaldemo-config", ConfigTableDirective)
    examples.setup(app)
    articles.setup(app)
    return {
        "version": __version__,
        # 6: an example's node names its record on env (plain data), and requests hold
        # their device; 8: a record holds its :name:, and says where it stands when that is
        # not its page's file (a docstring)
        "env_version": 8,
        "parallel_read_safe": True,
        "parallel_write_safe": True,
    }
