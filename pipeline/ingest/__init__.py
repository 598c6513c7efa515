"""Ingest: launching the Scrapy crawl; extracting articles, their metadata, dates and duplicates."""
