"""Read training data where it lives: thin, documented wrappers over dask's readers.

Any fsspec URL works — local paths, ``s3://`` (s3fs), ``hdfs://`` (pyarrow/libhdfs), ``gcs://``...
``storage_options`` go to fsspec (e.g. ``{"client_kwargs": {"endpoint_url": ...}}``, ``"anon": True``);
credentials otherwise come from the standard configuration (environment, ~/.aws, instance roles).
They are read on the workers, so the data never passes through the client.
"""
from __future__ import annotations

import dask.dataframe as dd


def read_parquet(url, storage_options: dict | None = None, **kwargs) -> dd.DataFrame:
    """A lazy dask DataFrame over Parquet file(s)/directories at ``url`` (``dd.read_parquet``)."""
    return dd.read_parquet(url, storage_options=storage_options, **kwargs)


def read_csv(url, storage_options: dict | None = None, **kwargs) -> dd.DataFrame:
    """A lazy dask DataFrame over CSV file(s) at ``url`` (glob patterns allowed; ``dd.read_csv``)."""
    return dd.read_csv(url, storage_options=storage_options, **kwargs)


def read_table(url: str, storage_options: dict | None = None, **kwargs) -> dd.DataFrame:
    """Parquet or CSV by the URL's extension (``.csv``/``.csv.gz``/``.txt`` are CSV, anything else
    Parquet) — what the command line uses."""
    lower = url.lower().rstrip("/")
    if lower.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
        return read_csv(url, storage_options, **kwargs)
    return read_parquet(url, storage_options, **kwargs)
