"""Numbered SQL migrations, applied in order by :mod:`nrhub.db.migrate`. Never edit an applied file."""
