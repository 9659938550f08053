"""The ticklake application shell: settings, the embedded local stack, and the CLI.

The data packages (normalize, ingest, storage, pipelines) never import the CLI; they may import
`ticklake.settings`, which imports nothing of the project.
"""
