"""The SunSpec map is generated from pysunspec2's model definitions (issue 14): the
checked-in table equals what scripts/gen_sunspec_models.py makes from the installed
pysunspec2, and its offsets and lengths are those pysunspec2 computes itself."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

sunspec_device = pytest.importorskip("sunspec2.device")

from minimeter.live.sunspec_models import MODELS  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gen_sunspec_models.py"


def test_s12_4_sunspec_table_is_current_with_pysunspec2():
    generator = runpy.run_path(str(SCRIPT))
    assert generator["TARGET"].read_text() == generator["render"]()


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_s12_4_sunspec_offsets_match_pysunspec2(model_id):
    # pysunspec2's own model object: its length (ID and L included) and each point's
    # offset from the ID register, size and type
    model = sunspec_device.Model(model_id)
    assert model.len == MODELS[model_id].length + 2
    ours = {p.name: (p.offset, p.size, p.type) for p in MODELS[model_id].points}
    assert ours == {name: (p.offset, p.len, p.pdef["type"]) for name, p in model.points.items()}
