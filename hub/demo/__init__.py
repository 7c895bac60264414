"""Demo data: real reference data plus clearly labelled synthetic figures."""
