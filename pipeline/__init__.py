"""dealwatch pipeline stages (extract, dedup, tag, detect, review, registry, export) and entry points."""
