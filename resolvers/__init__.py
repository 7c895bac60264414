"""The data layer and business rules: SQL, DataLoaders, sources, workflow, audit."""
