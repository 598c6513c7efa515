"""Review: reviewers' decisions, the deal registry, export, accounts and the web app."""
