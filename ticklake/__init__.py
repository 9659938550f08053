"""The ticklake application shell: settings, the embedded local stack, and the CLI.

The data packages (normalize, ingest, storage, pipelines) never import the CLI; they may import
`ticklake.settings`, which imports nothing of the project.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ticklake")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
