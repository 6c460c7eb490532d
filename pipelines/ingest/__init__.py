"""Ingestion: any source file (web, image, clinical) into samples of the one schema, or dead letters.

`sources.read_source` is the pure core; `beam.IngestSources` runs it in a pipeline and
`cli` runs it alone (`medcurate ingest`).
"""
