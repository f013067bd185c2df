"""What people do to their sources and channels, above storage: validate, seal, store, show.

``db/`` keeps the rows and knows no kind; the kinds' registries know options and secrets but no
rows. These modules join the two for the API, the CLI and the demo, so each of them adds, edits
and shows a source or channel the same way.
"""
