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
