"""A loopback S3 for tests: moto's ThreadedMotoServer on a free 127.0.0.1 port.

``moto_s3()`` is a context manager yielding ``(server, storage_options, bucket)``; ``s3`` is a
module-scoped pytest fixture built on it (import it into a test module to use it). Workers of a
process-based LocalCluster reach the loopback endpoint themselves; the fake credentials travel inside
``storage_options`` (the environment variables only keep botocore away from real configuration in
this process and are restored afterwards).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket

import pytest

FAKE_KEY = "testing"
_ENV = {"AWS_ACCESS_KEY_ID": FAKE_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
        "AWS_SHARED_CREDENTIALS_FILE": "", "AWS_CONFIG_FILE": ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _patched_env(values: dict):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _reset_backend(port: int) -> None:
    """Empty moto's S3 backend: it is global to the process, so a server started after another
    would otherwise see the earlier server's buckets."""
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST"),
                           timeout=10).close()


@contextlib.contextmanager
def moto_s3(bucket: str = "bucket"):
    """Start a moto S3 server, create ``bucket``; yield (server, storage_options, bucket); stop it."""
    pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    with _patched_env(_ENV):
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            _reset_backend(port)
            # no region_name: moto rejects the LocationConstraint botocore would send on mkdir
            so = {"key": FAKE_KEY, "secret": FAKE_KEY,
                  "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"},
                  "use_listings_cache": False}
            s3fs.S3FileSystem.clear_instance_cache()
            s3fs.S3FileSystem(**so).mkdir(bucket)
            yield server, so, bucket
        finally:
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@pytest.fixture(scope="module")
def s3():
    """(storage_options, bucket) of a fresh moto S3 server that lives for the test module."""
    with moto_s3() as (_server, so, bucket):
        yield so, bucket
