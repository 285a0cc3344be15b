"""A driver killed mid-fit resumes from export_checkpoints_dir (issue 20's acceptance): a subprocess
trains with checkpoints exported every scoring round and is SIGKILLed (with its embedded cluster);
continuing from its last checkpoint reaches the accuracy of an uninterrupted fit."""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from dask_dl import DeepLearningClassifier, load_model

from conftest import data_path

PARAMS = dict(hidden=[64], epochs=6, seed=1, quiet_mode=True, train_samples_per_iteration=1000,
              score_each_iteration=True)


@pytest.mark.faults
def test_a_killed_driver_resumes_from_its_last_checkpoint(client2, mnist_small, tmp_path):
    folder = str(tmp_path / "ckpt")
    script = textwrap.dedent(f"""
        import pandas as pd, dask_dl
        from dask_dl.cluster.session import local_client
        if __name__ == "__main__":
            train = pd.read_parquet({data_path("mnist", "train.parquet")!r}).iloc[:6000]
            with local_client(2, 1, dashboard_address=None) as client:  # client2's shape, on any machine
                dask_dl.DeepLearningClassifier(export_checkpoints_dir={folder!r}, client=client,
                                               **{PARAMS!r}).fit(train, "C785")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while len(glob.glob(folder + "/*.npz")) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "the fit ended before it could be killed"
        time.sleep(0.5)  # let the latest file be written
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded cluster, mid-fit
        proc.wait(timeout=30)
    files = sorted(glob.glob(folder + "/*.npz"))
    last = next(f for f in reversed(files) if _loads(f))
    assert 0 < load_model(last).run["epochs"] < PARAMS["epochs"]
    train, test = mnist_small
    X, y = test.drop(columns=["C785"]), test["C785"].to_numpy()
    resumed = DeepLearningClassifier(checkpoint=last, client=client2, **PARAMS).fit(train, "C785")
    straight = DeepLearningClassifier(client=client2, **PARAMS).fit(train, "C785")
    assert resumed.model_.run["epochs"] == PARAMS["epochs"]
    errors = [np.mean(m.predict(X) != y) for m in (resumed, straight)]
    assert abs(errors[0] - errors[1]) < 0.005, errors
    # one-thread workers on both clusters: the resumed fit is the uninterrupted one, bit for bit
    np.testing.assert_array_equal(resumed.model_.state, straight.model_.state)


def _loads(path) -> bool:
    try:
        load_model(path)
        return True
    except ValueError:  # a file cut short by the kill
        return False
