"""Clean stage (vidcap.clean.stage): every switch, flags, lengths, tokenizer, duplicates at merge."""
from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from vidcap.clean.stage import has_url, is_repetitive, words
from vidcap.dev.tiny import tiny_model
from vidcap.errors import RunnerFatal
from vidcap.gather import mark_duplicates
from vidcap.io.shards import make_shards
from vidcap.io.tables import write_table
from vidcap.stages import get_stage
from vidcap.stages.base import run_stage


def _row(text, **extra):
    return {"row_id": "r", "_media_path": "/x.mp4", "text": text, **extra}


def test_default_switches_clean_and_measure():
    stage = get_stage("clean", {})
    out = stage.process_row(_row("  The video shows a dog\nrunning\ton the beach.  "))
    assert out == {"clean_text": "A dog running on the beach.", "caption_words": 6, "caption_tokens": None,
                   "flag_empty": False, "flag_url": False, "flag_repeat": False}


def test_each_switch_off_leaves_text_or_column_alone():
    off = get_stage("clean", {"strip_openings": False, "collapse_whitespace": False, "flag_empty": False,
                              "flag_url": False, "flag_repeat": False, "words": False, "tokens": False})
    out = off.process_row(_row(" In this video, a cat  sleeps. "))
    assert out == {"clean_text": " In this video, a cat  sleeps. ", "caption_words": None, "caption_tokens": None,
                   "flag_empty": None, "flag_url": None, "flag_repeat": None}


def test_flags():
    stage = get_stage("clean", {})
    assert stage.process_row(_row(""))["flag_empty"] is True
    assert stage.process_row(_row(None))["flag_empty"] is True
    assert stage.process_row({"row_id": "r", "_media_path": ""})["flag_empty"] is True, "no text column"
    assert stage.process_row(_row("Visit www.example.com for more"))["flag_url"] is True
    for url in ("see https://t.co/abc", "source: youtube.com/watch?v=1", "WWW.SHOP.DE"):
        assert has_url(url), url
    for text in ("A man walks. The end.", "3.5 meters away", "e.g. a dog", "Mr.Smith waves"):
        assert not has_url(text), text
    loops = ["a dog runs a dog runs a dog runs", "the the the the", "red car, red car, red car on a road",
             "It is sunny and the sky is blue. It is sunny and the sky is blue. It is sunny and the sky is blue."]
    for text in loops:
        assert is_repetitive(text), text
    fine = ["A dog runs on the beach while a man walks on the beach.", "Waves roll in, waves roll out.",
            "A woman in a red dress walks past a red car near a red door."]
    for text in fine:
        assert not is_repetitive(text), text
    # an n-gram of 4 words occurring 3 times anywhere
    assert is_repetitive("the man in the hat walks; later the man in the hat sits; then the man in the hat runs")
    assert stage.process_row(_row("a dog runs a dog runs a dog runs"))["flag_repeat"] is True
    assert words("Hello,  world! -- 42 ...") == ["hello", "world", "42"]


def test_motion_sentence_replace_text_and_failed_caption():
    stage = get_stage("clean", {"append_motion": True, "replace_text": True})
    assert stage.columns.keys() >= {"text"} and "clean_text" not in stage.columns
    assert "cmotion" in stage.input_columns
    out = stage.process_row(_row("The clip shows a dog.", cmotion="pan_left+tilt_up"))
    assert out["text"] == "A dog. The camera pans left while tilting up."
    assert out["caption_words"] == 9
    assert stage.process_row(_row("A dog.", cmotion="unclassified"))["text"] == "A dog."
    assert stage.process_row(_row("", cmotion="static"))["text"] == "The camera is static."
    assert stage.process_row(_row("A dog.", cmotion=None))["text"] == "A dog."
    failed = stage.process_row(_row("old hint", caption_error="cannot open"))
    assert isinstance(failed, ValueError) and "caption stage failed" in str(failed)


def test_caption_tokens_with_a_tokenizer_folder():
    folder = tiny_model("qwen2")
    stage = get_stage("clean", {"tokenizer": str(folder)})
    stage.setup()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    text = "A dog runs on the beach at sunset."
    assert stage.process_row(_row(text))["caption_tokens"] == len(tok(text, add_special_tokens=False)["input_ids"])
    assert stage.process_row(_row(""))["caption_tokens"] == 0


def test_unavailable_tokenizer_fails_when_named_and_is_null_when_auto(tmp_path):
    named = get_stage("clean", {"tokenizer": str(tmp_path / "nope")})
    with pytest.raises(RunnerFatal, match="cannot load tokenizer"):
        named.setup()
    auto = get_stage("clean", {"tokenizer": str(tmp_path / "nope"), "tokenizer_auto": True})
    auto.setup()
    assert auto.process_row(_row("A dog."))["caption_tokens"] is None
    assert get_stage("clean", {"tokenizer": str(tmp_path / "a"), "tokenizer_auto": True}).fingerprint() != \
        get_stage("clean", {"tokenizer": str(tmp_path / "b"), "tokenizer_auto": True}).fingerprint()


def test_stage_run_on_a_shard(tmp_path):
    texts = ["The video shows a cat.", "", "In this video, a cat.", "A cat."]
    write_table(pd.DataFrame({"path": [f"{i}.mp4" for i in range(4)], "text": texts}), tmp_path / "m.csv")
    make_shards(tmp_path / "m.csv", tmp_path / "shards", 10, None)
    stage = get_stage("clean", {})
    table = run_stage(stage, tmp_path / "shards" / "00000.parquet", tmp_path / "out.parquet",
                      tmp_path / "j.jsonl")
    assert table.column("clean_text").to_pylist() == ["A cat.", "", "A cat.", "A cat."]
    assert table.column("flag_empty").to_pylist() == [False, True, False, False]
    assert pq.read_table(tmp_path / "out.parquet").column("clean_error").null_count == 4


def test_mark_duplicates_first_row_id_in_manifest_order():
    df = pd.DataFrame({"row_id": list("abcdef"), "clean_text": ["x", "y", "x", "", None, "x"]})
    got = mark_duplicates(df, "clean_text")
    assert [None if pd.isna(v) else v for v in got] == [None, None, "a", None, None, "a"]
