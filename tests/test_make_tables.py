"""tools/make_tables.py: a spec of checkpoints and settings -> README-style Markdown tables."""

import glob
import json

import pytest
import torch
import yaml

from lib.core.published import published_result
from lib.core.table_spec import read_spec
from tests.conftest import make_pairs, write_split
from tests.test_smoothnet_weights import released_state_dict
from tools import make_tables


@pytest.fixture
def spec_setup(tmp_path, rng):
    base = str(tmp_path / "poses")
    for dataset, estimator in (("aist", "vibe"), ("pw3d", "spin")):
        write_split(base, dataset, estimator, "3D", "test", *make_pairs(rng, [50, 40], 14, 3))
    checkpoint = str(tmp_path / "checkpoint_32.pth.tar")
    torch.save({"state_dict": released_state_dict()}, checkpoint)
    spec = {"defaults": {"checkpoint": checkpoint, "representation": "3D",
                         "opts": ["DATASET.BASE_DIR", base]},
            "entries": [{"dataset": "aist", "estimator": "vibe", "label": "SmoothNet (released)"},
                        {"dataset": "pw3d", "estimator": "spin"}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path), base, checkpoint


def test_tables_show_ours_beside_the_published_numbers(spec_setup, tmp_path):
    spec, _, _ = spec_setup
    out, out_json = str(tmp_path / "tables.md"), str(tmp_path / "tables.json")
    assert make_tables.main(["--spec", spec, "--markdown", out, "--json", out_json]) == 0
    text = open(out).read()
    assert "### 3D keypoints" in text
    assert "| aist | vibe | SmoothNet (released) |" in text
    assert "106.90 → 97.47" in text and "96.85 → 95.84" in text  # README numbers
    rows = json.load(open(out_json))
    assert [r["model"] for r in rows] == ["SmoothNet (released)", "smoothnet_released"]
    assert rows[1]["published"]["trained_on"] == "pw3d_spin_3D"


def test_csv_spec_and_missing_fields(spec_setup, tmp_path):
    _, base, checkpoint = spec_setup
    csv_path = tmp_path / "spec.csv"
    csv_path.write_text("checkpoint,dataset,estimator,representation,opts\n"
                        f"{checkpoint},aist,vibe,3D,DATASET.BASE_DIR {base}\n")
    (entry,) = read_spec(str(csv_path))
    assert entry.opts == ["DATASET.BASE_DIR", base]
    csv_path.write_text("checkpoint,dataset\nx.pth,aist\n")
    with pytest.raises(ValueError, match="missing.*estimator"):
        read_spec(str(csv_path))


def test_published_lookup():
    assert published_result("h36m", "cpn", "2D").mpjpe_in == 6.67
    assert published_result("mupots", "tposenet_refinenet", "3D").accel_out == 7.21
    assert published_result("jhmdb", "simplepose", "2D") is None


@pytest.mark.parametrize("path", sorted(glob.glob("docs/tables/*.yaml")))
def test_documented_specs_parse(path):
    entries = read_spec(path)
    assert entries and all(e.checkpoint and e.representation for e in entries)
