"""Jobs: the work that ties the stages together (processing, the nightly run, the scheduler)."""
