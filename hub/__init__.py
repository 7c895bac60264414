"""The composition root: settings, the app factory, the embedded database, migrations, the CLI."""
