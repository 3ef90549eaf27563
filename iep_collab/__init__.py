"""The composition root: settings -> stores, extensions, authenticator -> the web app.

It sits above `collab_server` (the core), `persistence` and `integrations` and is imported by
nothing of theirs; the `collab-server` command (`iep_collab.cli`) starts here.
"""
