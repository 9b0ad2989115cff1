"""Sphinx configuration for the sktransfer documentation.

Build with ``python -m sphinx -b html docs docs/_build/html`` from the
repository root. Nothing here imports ``sktransfer``: autodoc, autosummary and
sphinx-gallery import it themselves while the build runs. No network is used
(intersphinx is deliberately not enabled).
"""

import os
import sys
from importlib import metadata

# Make the source tree importable when the package is not installed.
sys.path.insert(0, os.path.abspath(".."))

# -- Project information -----------------------------------------------------

project = "sktransfer"
author = "The sktransfer developers"
copyright = "The sktransfer developers"
try:
    # Reads the installed distribution's metadata; does not import the package.
    release = metadata.version("sktransfer")
except metadata.PackageNotFoundError:
    release = "0.1.0"
version = ".".join(release.split(".")[:2])

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ----------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"

# The default autosummary class template already lists the methods; numpydoc
# must not add a second table.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- sphinx-gallery ------------------------------------------------------------

# The examples fit small models, several times faster with one torch thread on
# a few cores (user guide, "Torch threads and small fits"); the gallery runs
# them all in this process.
import torch  # noqa: E402

torch.set_num_threads(1)

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only scripts named plot_*.py are executed.
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

# -- HTML output ---------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
html_theme_options = {
    "show_toc_level": 2,
}
html_static_path = []
