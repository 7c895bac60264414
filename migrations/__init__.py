"""Numbered SQL migrations, applied in order by :mod:`hub.migrate`. Never edit an applied file."""
