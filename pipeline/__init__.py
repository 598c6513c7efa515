"""dealwatch: the stages from fetched page to deal registry.

The modules at this level (config, dates, jsonl, language, text) are the foundation every layer may
use. The sub-packages are layers, lowest first: storage, ingest and analysis (the stages), review,
jobs, and the cli on top. docs/architecture.md walks through them.
"""
