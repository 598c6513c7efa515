"""The Scrapy project: settings, spiders per source kind, middlewares, the page-storing pipeline."""
