"""SPEC §2: the model catalog and its options."""

from __future__ import annotations

import pytest

from minimeter import InvalidOption, Meter, UnknownModel, load_catalog, meter_spec


def test_s2_1_catalog_is_data_with_sources():
    catalog = load_catalog()
    assert list(catalog.models) == ["MO", "MK", "6S", "6F", "7B", "5B"]
    for entry in catalog.models.values():
        assert entry.source  # every entry says where its facts come from
    assert "decision" in catalog.sources["starting_current"]


@pytest.mark.parametrize("prefix,elements", [("MO", 1), ("MK", 1), ("6S", 1), ("6F", 1), ("7B", 2), ("5B", 2)])
def test_s2_1_elements_and_inputs(prefix, elements):
    spec = meter_spec(prefix)
    assert spec.elements == elements
    assert spec.ct_inputs == (("CT1",) if elements == 1 else ("CT1", "CT2"))
    assert ("L2" in spec.voltage_inputs) == (elements == 2)


def test_s2_4_unknown_prefix_lists_the_valid_ones():
    with pytest.raises(UnknownModel) as err:
        meter_spec("X9")
    assert "MO, MK, 6S, 6F, 7B, 5B" in str(err.value)


def test_s2_2_t_model_has_no_1000_output():
    spec = meter_spec("7B", t_suffix=True)
    assert spec.outputs_wh == (10, 100)
    assert meter_spec("7BT").outputs_wh == (10, 100)
    with pytest.raises(InvalidOption, match="T models have no 1000 output"):
        meter_spec("7B", t_suffix=True, outputs=["1000"])
    meter = Meter.for_model("MO", t_suffix=True)
    with pytest.raises(Exception, match="no output '1000'"):
        meter.closures("1000")


def test_s2_4_ct2_on_single_element_model_is_refused():
    with pytest.raises(InvalidOption, match="no CT2 input"):
        meter_spec("MO", inputs=["L1", "N", "CT1", "CT2"])
    with pytest.raises(InvalidOption, match="no L2 input"):
        meter_spec("6S", inputs=["L2"])
    assert meter_spec("7B", inputs=["CT2", "L2"]).elements == 2


def test_s2_2_secondary_rated_model_needs_a_ratio():
    with pytest.raises(InvalidOption, match="needs the CT ratio"):
        meter_spec("7B", ct_rating="0.1A")
    spec = meter_spec("7B", ct_rating="0.1A", ct_ratio="200:0.1")
    assert spec.ct_ratio == pytest.approx(2000.0)
    assert spec.rated_primary_a == pytest.approx(200.0)
    assert spec.max_primary_a == pytest.approx(220.0)   # 0.11 A secondary × 2000
    with pytest.raises(InvalidOption, match="secondary-rated models"):
        meter_spec("7B", ct_rating="200A", ct_ratio="200:0.1")


@pytest.mark.parametrize("rating,maximum", [("100A", 110.0), ("200A", 220.0), ("400A", 440.0)])
def test_s2_3_maximum_rated_current_is_110_percent(rating, maximum):
    assert meter_spec("MO", ct_rating=rating).max_primary_a == pytest.approx(maximum)


def test_s2_2_bad_rating_register_and_aux_options_name_the_choices():
    with pytest.raises(InvalidOption, match="100A, 200A, 400A, 0.1A, 0.2A"):
        meter_spec("7B", ct_rating="300A")
    with pytest.raises(InvalidOption, match="lcd, counter100, counter1000"):
        meter_spec("7B", register="dial")
    with pytest.raises(InvalidOption, match="models with it"):
        meter_spec("5B", aux_12v=True)
    with pytest.raises(InvalidOption, match="counter models only"):
        meter_spec("7B", outputs=["counter"])
    assert meter_spec("7B", register="counter100", outputs=["counter"]).counter_kh_wh == 100


def test_s4_5_starting_current_default_is_0_1_percent():
    assert meter_spec("7B", ct_rating="200A").starting_current_a == pytest.approx(0.2)
