"""Make and model names agree across EPA, the EPA test-car list, NHTSA and people."""

from __future__ import annotations

import pytest

from tools.domain.names import base_model, display_make, make_key, model_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("HONDA", "honda"),  # NHTSA
        ("Honda", "honda"),  # EPA
        (" honda ", "honda"),
        ("TOYOTA", "toyota"),  # test cars, MY2019
        ("Chevy", "chevrolet"),
        ("CHEVROLET", "chevrolet"),
        ("VW", "volkswagen"),
        ("Volkswagen", "volkswagen"),
        ("MERCEDES BENZ", "mercedes-benz"),  # NHTSA writes both
        ("MERCEDES-BENZ", "mercedes-benz"),
        ("Mercedes-Benz", "mercedes-benz"),
        ("mercedes", "mercedes-benz"),
        ("Rolls Royce", "rolls-royce"),  # test cars
        ("ROLLS-ROYCE", "rolls-royce"),
        ("LAND ROVER", "land rover"),
        ("Range Rover", "land rover"),  # test cars put the model line in the make column
        ("MINI", "mini"),
        ("Mini", "mini"),
        ("McLaren Automotive", "mclaren"),  # EPA
        ("MCLAREN", "mclaren"),  # NHTSA
        ("INEOS Automotive Ltd", "ineos"),  # test cars
        ("INEOS", "ineos"),  # NHTSA
        ("Tesla Model 3", "tesla"),  # test cars, MY2023
        ("BMX", "bmw"),  # test cars' typo
        ("", ""),
    ],
)
def test_make_spellings_share_one_key(raw: str, key: str) -> None:
    assert make_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("CR-V AWD", "crv"),  # EPA
        ("CR-V FWD", "crv"),
        ("CR-V", "crv"),  # NHTSA
        ("CRV", "crv"),  # a person
        ("cr v", "crv"),
        ("F150 Pickup 4WD", "f150"),  # EPA
        ("F150 PICKUP 4WD", "f150"),  # test cars
        ("F-150", "f150"),  # NHTSA
        ("f 150", "f150"),
        ("RAV4 AWD", "rav4"),
        ("RAV4 HYBRID AWD", "rav4"),  # hybrid is a configuration, not a model
        ("RAV4 Hybrid  AWD", "rav4"),  # EPA's double space
        ("RAV4 Prime 4WD", "rav4prime"),  # a different model
        ("SILVERADO 1500", "silverado"),  # NHTSA's light-duty name is EPA's "Silverado"
        ("Silverado 2WD", "silverado"),
        ("SILVERADO 2500", "silverado2500"),  # heavy duty stays apart
        ("C300 4matic", "c300"),
        ("330i xDrive", "330i"),
        ("Camry HEV FF LE", "camryle"),  # trims are not recognisable in general: EPA's baseModel is used
        ("Model 3 Long Range AWD", "model3longrange"),
        ("4Runner 4WD", "4runner"),  # the first word is never dropped
        ("", ""),
    ],
)
def test_model_spellings_share_one_key(raw: str, key: str) -> None:
    assert model_key(raw) == key


@pytest.mark.parametrize(
    ("raw", "base"),
    [
        ("CR-V AWD", "CR-V"),
        ("F150 Pickup 4WD", "F150"),
        ("F-150", "F-150"),
        ("RAV4 Hybrid AWD", "RAV4"),
        ("Sierra 1500 4WD", "Sierra"),
        ("RAV4 Prime 4WD", "RAV4 Prime"),
        ("", ""),
    ],
)
def test_base_model_drops_suffixes_but_keeps_the_spelling(raw: str, base: str) -> None:
    assert base_model(raw) == base


@pytest.mark.parametrize(
    ("key", "spelled", "shown"),
    [
        ("mercedes-benz", None, "Mercedes-Benz"),
        ("bmw", "BMW", "BMW"),
        ("honda", "HONDA", "Honda"),  # NHTSA's capitals are not kept
        ("land rover", "Land Rover", "Land Rover"),
        ("mclaren", None, "McLaren"),
        ("mini", "Mini", "MINI"),  # one spelling for both EPA spellings
        ("alfa romeo", "ALFA ROMEO", "Alfa Romeo"),
        ("aston martin", "Aston Martin", "Aston Martin"),
    ],
)
def test_display_make_is_one_spelling_per_key(key: str, spelled: str | None, shown: str) -> None:
    assert display_make(key, spelled) == shown


def test_epa_and_nhtsa_spellings_of_the_same_vehicle_meet() -> None:
    epa = (make_key("Honda"), model_key("CR-V"))  # EPA's baseModel of "CR-V AWD"
    nhtsa = (make_key("HONDA"), model_key("CR-V"))
    test_car = (make_key("HONDA"), model_key("CR-V AWD"))
    assert epa == nhtsa == test_car == ("honda", "crv")
