import json
import shutil

import pytest

from hfstream.codec.hybrid import HybridCodec
from hfstream.codec.model_io import (
    DEFAULT_MODEL_DIR,
    WEIGHTS_NAME,
    ModelFileError,
    load_model,
    model_id_of,
    model_id_of_folder,
)


@pytest.fixture()
def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, dst)
    return dst


def test_shipped_model_is_within_budget_and_named():
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size < 40e6
    cfg = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert cfg["name"] and cfg["version"] >= 1


def test_model_id_follows_the_config(model_copy, codec):
    bundle = load_model(model_copy)
    assert bundle.model_id == codec.model_id
    changed = dict(bundle.config, version=bundle.config["version"] + 1)
    assert model_id_of(changed) != bundle.model_id


def test_tampered_weights_are_refused(model_copy):
    w = model_copy / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the SHA-256"):
        HybridCodec.from_pretrained(model_copy)


def test_missing_and_foreign_configs(model_copy, tmp_path):
    with pytest.raises(ModelFileError, match="No config.json"):
        load_model(tmp_path)
    cfg = model_copy / "config.json"
    cfg.write_text("{not json")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(model_copy)
    cfg.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="not an hfstream model config"):
        load_model(model_copy)
    cfg.write_text(json.dumps({"format": "hfstream-model", "format_version": 99}))
    with pytest.raises(ModelFileError, match="format_version 99"):
        load_model(model_copy)


def test_model_id_from_the_config_alone(codec, tmp_path):
    assert model_id_of_folder() == codec.model_id
    with pytest.raises(ModelFileError, match="Cannot read the model config"):
        model_id_of_folder(tmp_path)


def test_a_model_is_loaded_once_per_folder_and_again_when_rewritten(model_copy, codec):
    import os
    import threading

    from hfstream.codec.shared import shared_codec

    # The suite's codec comes from shared_codec: every other caller gets that very object.
    assert shared_codec() is codec is shared_codec(DEFAULT_MODEL_DIR / ".." / "default")
    got = []
    threads = [
        threading.Thread(target=lambda p=p: got.append(shared_codec(p)))
        for p in (model_copy, str(model_copy))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2 and got[0] is got[1] and got[0] is not codec
    weights = model_copy / WEIGHTS_NAME
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rewritten in place
    again = shared_codec(model_copy)
    assert again is not got[0] and again.model_id == got[0].model_id
