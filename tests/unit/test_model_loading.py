"""load_model parses a file once per text: loading it again is free, and an edited file is read afresh."""

import pkpd


def test_an_edited_model_file_is_loaded_with_its_new_text(tmp_path):
    """A model file loaded, edited (same size, same second: a time stamp would not tell), and loaded again gives
    the new value; loading the unchanged text again gives the same immutable model."""
    text = (pkpd.load.model_dirs()[0] / "pk_1cmt_iv.toml").read_text(encoding="utf-8")
    assert "value = 2.8\n" in text
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    first = pkpd.load_model(path)
    assert first.parameter("CL").value == 2.8
    assert pkpd.load_model(path) is first
    path.write_text(text.replace("value = 2.8\n", "value = 3.8\n", 1), encoding="utf-8")
    assert pkpd.load_model(path).parameter("CL").value == 3.8
    path.write_text(text, encoding="utf-8")
    assert pkpd.load_model(path).parameter("CL").value == 2.8


def test_the_same_text_in_two_files_names_each_file(tmp_path):
    """The model remembers the file it came from (for messages), so one text in two files is two models."""
    text = (pkpd.load.model_dirs()[0] / "pk_1cmt_iv.toml").read_text(encoding="utf-8")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(text, encoding="utf-8")
    b.write_text(text, encoding="utf-8")
    assert pkpd.load_model(a).file == str(a)
    assert pkpd.load_model(b).file == str(b)


def test_whole_numbers_in_a_model_file_are_read_as_floats(tmp_path):
    """TOML reads ``value = 2`` as an integer; a model's numbers are floats however they are written, so nothing
    downstream meets integer arithmetic (an array of whole-number parameter values raising 2 ** -1 fails in numpy:
    "Integers to negative integer powers are not allowed"). Values, bounds and covariate defaults become the same
    floats (bit for bit) as if written with a decimal point, and the loaded model simulates as that one does."""
    import numpy as np

    text = (pkpd.load.model_dirs()[0] / "pk_1cmt_iv.toml").read_text(encoding="utf-8")
    for old in ("value = 2.8\n", "bounds = [0.5, 1000.0]\n", "value = 70.0\n"):
        assert old in text
    point = (text.replace("value = 2.8\n", "value = 3.0\n", 1)
             .replace("bounds = [0.5, 1000.0]\n", "bounds = [1.0, 1000.0]\n", 1))
    whole = (point.replace("value = 3.0\n", "value = 3\n", 1)
             .replace("bounds = [1.0, 1000.0]\n", "bounds = [1, 1000]\n", 1)
             .replace("value = 70.0\n", "value = 70\n", 1))
    (tmp_path / "whole.toml").write_text(whole, encoding="utf-8")
    (tmp_path / "point.toml").write_text(point, encoding="utf-8")
    a, b = pkpd.load_model(tmp_path / "whole.toml"), pkpd.load_model(tmp_path / "point.toml")
    assert a.parameters == b.parameters and a.covariates == b.covariates
    for m in (a, b):
        assert type(m.parameter("CL").value) is float and m.parameter("CL").value == 3.0
        assert all(type(x) is float for p in m.parameters for x in (p.value, *p.bounds))
        assert all(type(c.value) is float for c in m.covariates)
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    conc = [pkpd.simulate(m, regimen, [1.0, 5.0])["conc"] for m in (a, b)]
    np.testing.assert_array_equal(conc[0], conc[1])
