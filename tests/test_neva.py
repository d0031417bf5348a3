"""NeVA files: prompt JSONL -> manifest rows (bad lines by number), answers JSONL both shapes, knobs."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import write_corrupt_mp4
from vidcap.caption.neva_inference import insert_media_token, media_first, neva_generation
from vidcap.config import stage_settings
from vidcap.errors import ConfigError
from vidcap.io.answers import read_answers, write_answers
from vidcap.io.manifest import read_manifest
from vidcap.io.prompt_files import (
    PROMPT_COLUMNS,
    BadLine,
    PromptFileError,
    iter_prompt_file,
    read_prompt_file,
    write_prompt_file,
)
from vidcap.io.shards import make_shards
from vidcap.io.tables import read_table, write_table

GOOD = [
    {"video": "clips/a.mp4", "text": "Can you describe the scene?", "category": "conv", "question_id": 0},
    {"video": "clips/a.mp4", "text": "What moves, and where to? «ünïcode», commas", "category": "detail",
     "question_id": 1, "source": "set-1", "tags": ["x", "y"]},
    {"image": "/abs/b.jpg", "prompt": "Count the cars.", "text": "kept as a column", "question_id": "q-7"},
]


def _write_lines(path: Path, lines: list) -> Path:
    with open(path, "wb") as fh:
        for line in lines:
            fh.write(line if isinstance(line, bytes) else (line + "\n").encode())
    return path


def _prompt_file(tmp_path: Path) -> Path:
    """3 good lines (1, 3, 5) and one of each kind of bad line; line numbers as in the file."""
    lines = [
        json.dumps(GOOD[0]),                                                     # 1 good
        "{not json",                                                             # 2 bad
        json.dumps(GOOD[1], ensure_ascii=False),                                 # 3 good
        "",                                                                      # 4 blank: skipped
        json.dumps(GOOD[2]),                                                     # 5 good
        json.dumps([1, 2]),                                                      # 6 not an object
        json.dumps({"video": "c.mp4", "question_id": 9}),                        # 7 no question
        json.dumps({"text": "q?", "question_id": 10}),                           # 8 no media
        json.dumps({"video": "c.mp4", "image": "c.jpg", "text": "q", "question_id": 11}),  # 9 both
        json.dumps({"video": "c.mp4", "text": "q"}),                             # 10 no question_id
        json.dumps({"video": "d.mp4", "text": "again", "question_id": 1}),       # 11 duplicate id
        b'{"video": "e.mp4", "text": "\xff\xfe", "question_id": 12}\n',         # 12 not UTF-8
        json.dumps({"video": "", "text": "q", "question_id": 13}),               # 13 empty path
    ]
    return _write_lines(tmp_path / "questions.jsonl", lines)


BAD_LINES = {2: "not JSON", 6: "not a JSON object", 7: "no question", 8: "no media", 9: "both 'video' and 'image'",
             10: "no question_id", 11: "question_id 1 already used on line 3", 12: "not UTF-8",
             13: "non-empty path"}


def test_prompt_file_strict_lists_every_bad_line_by_number(tmp_path):
    path = _prompt_file(tmp_path)
    with pytest.raises(PromptFileError) as err:
        read_prompt_file(path)
    assert [b.line for b in err.value.bad_lines] == sorted(BAD_LINES)
    for bad in err.value.bad_lines:
        assert BAD_LINES[bad.line] in bad.reason, (bad.line, bad.reason)
    assert "9 bad line(s)" in str(err.value) and "line 2: not JSON" in str(err.value)


def test_prompt_file_report_mode_keeps_every_good_row_verbatim(tmp_path):
    path = _prompt_file(tmp_path)
    res = read_prompt_file(path, on_bad_line="report")
    assert [b.line for b in res.bad_lines] == sorted(BAD_LINES)
    t = res.table
    assert list(t.columns[:5]) == list(PROMPT_COLUMNS)
    assert t["question_id"].tolist() == ["0", "1", "q-7"]
    assert t["path"].tolist() == [str(tmp_path / "clips/a.mp4"), str(tmp_path / "clips/a.mp4"), "/abs/b.jpg"]
    assert t["media_type"].tolist() == ["video", "video", "image"]
    assert t["prompt"].tolist() == [GOOD[0]["text"], GOOD[1]["text"], "Count the cars."]   # 'prompt' beats 'text'
    assert t["category"].tolist() == ["conv", "detail", ""]
    # other keys pass through: strings verbatim, other JSON as JSON text, '' where a line lacks the key
    assert t["source"].tolist() == ["", "set-1", ""]
    assert t["tags"].tolist() == ["", '["x", "y"]', ""]
    assert t["text"].tolist() == ["", "", "kept as a column"]
    # streamed form: one item per non-blank line, in file order
    items = list(iter_prompt_file(path))
    assert len(items) == 12 and sum(isinstance(i, BadLine) for i in items) == 9


def test_media_base_path_and_media_type(tmp_path):
    path = _prompt_file(tmp_path)
    t = read_prompt_file(path, media_base_path=str(tmp_path / "media"), on_bad_line="report").table
    assert t["path"].tolist()[:2] == [str(tmp_path / "media/clips/a.mp4")] * 2
    assert t["path"].tolist()[2] == "/abs/b.jpg", "absolute paths are kept"
    res = read_prompt_file(path, media_type="video", on_bad_line="report")
    assert res.table["question_id"].tolist() == ["0", "1", "11"]
    line5 = next(b for b in res.bad_lines if b.line == 5)
    assert "no 'video' key" in line5.reason and "it has 'image'" in line5.reason
    # line 9 (both keys) is fine when the media type is named: the other key passes through
    nine = res.table[res.table["question_id"] == "11"]
    assert nine["path"].tolist() == [str(tmp_path / "c.mp4")] and nine["image"].tolist() == ["c.jpg"]


def test_prompt_table_goes_where_manifests_go(tmp_path):
    """Written as CSV or Parquet, read back by read_table unchanged; shards give each question its own
    row id even when two questions share a clip."""
    path = _write_lines(tmp_path / "q.jsonl", [json.dumps(g, ensure_ascii=False) for g in GOOD])
    table = read_manifest(path)
    assert table.attrs["bad_lines"] == []
    for name in ("m.csv", "m.parquet"):
        write_table(table, tmp_path / name)
        back = read_table(tmp_path / name)
        pd.testing.assert_frame_equal(back, table, check_dtype=False)
        shards = make_shards(tmp_path / name, tmp_path / f"shards-{name}", 10)
        sh = pd.read_parquet(shards[0])
        assert sh["_media_path"].tolist() == table["path"].tolist()
        assert sh["row_id"].nunique() == 3
        assert sh["prompt"].tolist() == table["prompt"].tolist()
    # CSV/Parquet still go through read_table
    assert read_manifest(tmp_path / "m.csv")["question_id"].tolist() == ["0", "1", "q-7"]
    # and back to a prompt file
    write_prompt_file(table, tmp_path / "again.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "again.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"video": str(tmp_path / "clips/a.mp4"), "text": GOOD[0]["text"], "category": "conv",
                        "question_id": 0}
    assert lines[2]["image"] == "/abs/b.jpg" and lines[2]["question_id"] == "q-7"
    again = read_prompt_file(tmp_path / "again.jsonl").table
    assert again[list(PROMPT_COLUMNS)].equals(table[list(PROMPT_COLUMNS)])


def test_insert_media_token_as_neva():
    assert insert_media_token("Describe it.", "left") == "<video>\nDescribe it."
    assert insert_media_token("Describe it.", "right") == "Describe it.<video>"
    assert insert_media_token("Describe it.", "right", "image") == "Describe it.<image>"
    assert insert_media_token("Describe it.", None) == "Describe it."
    with pytest.raises(ConfigError, match="left or right"):
        insert_media_token("x", "middle")
    assert media_first("left") and media_first(None) and not media_first("right")


def test_neva_sampling_knobs_map_to_valid_generation_settings():
    # the inference block of NeMo's Video NeVA example (shared/seeds/003)
    inference = {"temperature": 0.2, "top_k": 0, "top_p": 0.9, "greedy": False, "add_BOS": False,
                 "all_probs": False, "repetition_penalty": 1.2, "insert_media_token": "right",
                 "tokens_to_generate": 256, "media_type": "video", "media_base_path": "/videos"}
    gen, notes = neva_generation(inference)
    assert gen == {"max_new_tokens": 256, "temperature": 0.2, "top_k": None, "top_p": 0.9,
                   "repetition_penalty": 1.2}
    assert notes["top_k"] == "0 (off): unset"
    assert notes["add_BOS"].startswith("not honoured")
    assert notes["insert_media_token"].startswith("not a generation setting")
    assert set(notes) == set(inference)
    checked = stage_settings("caption", {"generation": gen})["generation"]   # the caption schema accepts it
    assert checked["max_new_tokens"] == 256 and checked["top_p"] == 0.9
    greedy, gnotes = neva_generation({"greedy": True, "temperature": 0.7, "top_k": 5, "repetition_penalty": 1.0,
                                      "min_tokens_to_generate": 0})
    assert greedy == {"temperature": 0.0, "repetition_penalty": None, "min_new_tokens": None}
    assert gnotes["temperature"] == "ignored: greedy is true"
    with pytest.raises(ConfigError, match="unknown NeVA inference key.*top_kk"):
        neva_generation({"top_kk": 3})


def test_answers_files_both_shapes(tmp_path):
    df = pd.DataFrame({"question_id": ["0", "1", "q-7"], "prompt": ["Describe.", "What moves?", "Count."],
                       "text": ["A dog runs.", None, "Three cars."], "caption_error": [None, "timed out", None],
                       "category": ["conv", "detail", ""]})
    write_answers(df, tmp_path / "a.jsonl", model_id="tiny-qwen", error_column="caption_error")
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert lines[0]["question_id"] == 0 and lines[2]["question_id"] == "q-7"
    assert set(lines[0]) == {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}
    assert lines[1]["text"] == "" and lines[1]["metadata"]["error"] == "timed out"
    a = read_answers(tmp_path / "a.jsonl").table
    assert a["question_id"].tolist() == ["0", "1", "q-7"]
    assert a["text"].tolist() == ["A dog runs.", "", "Three cars."]
    assert a["error"].tolist() == ["", "timed out", ""], "a failed answer reads back as an error, not as ''"
    assert a["model_id"].tolist() == ["tiny-qwen"] * 3 and a["shape"].tolist() == ["question_id"] * 3
    # llava-bench's line (seed 003), the response shape, and bad lines in one file
    _write_lines(tmp_path / "b.jsonl", [
        json.dumps({"question_id": 0, "prompt": "What is the name of this famous sight in the photo?",
                    "answer_id": "TeyehNxHw5j8naXfEWaxWd", "model_id": "gpt-4-0314", "metadata": {},
                    "text": "The famous sight in the photo is Diamond Head."}),
        json.dumps({"response_id": 1, "response": "A dog."}),
        json.dumps({"response_id": 1, "response": "again"}),
        json.dumps({"id": 2, "answer": "wrong keys"}),
        "[]",
    ])
    with pytest.raises(PromptFileError) as err:
        read_answers(tmp_path / "b.jsonl")
    assert [b.line for b in err.value.bad_lines] == [3, 4, 5]
    res = read_answers(tmp_path / "b.jsonl", on_bad_line="report")
    b = res.table
    assert b["question_id"].tolist() == ["0", "1"] and b["line"].tolist() == [1, 2]
    assert b["shape"].tolist() == ["question_id", "response_id"]
    assert b["text"].tolist() == ["The famous sight in the photo is Diamond Head.", "A dog."]
    assert b["answer_id"].tolist() == ["TeyehNxHw5j8naXfEWaxWd", ""]
    assert "already answered on line 2" in res.bad_lines[0].reason


# ------------------------------------------------------------------ prompt files as manifests


def test_prompt_file_is_a_manifest_wherever_tables_are(tmp_path, capsys):
    """read_table / count_manifest_rows / read_table_columns / write_table / make_shards / vidcap merge and diff
    take a prompt file; paths stay as written (the shard step resolves them like a CSV's)."""
    from vidcap.cli import main
    from vidcap.io.table_batches import count_manifest_rows, read_table_columns

    path = _prompt_file(tmp_path)
    with pytest.raises(PromptFileError, match="9 bad line"):
        read_table(path)
    with pytest.raises(PromptFileError):
        count_manifest_rows(path)
    assert count_manifest_rows(path, bad_lines="report") == 3
    t = read_table(path, bad_lines="report")
    assert t["path"].tolist() == ["clips/a.mp4", "clips/a.mp4", "/abs/b.jpg"], "as written"
    assert [b.line for b in t.attrs["bad_lines"]] == sorted(BAD_LINES)
    assert read_table_columns(path, ["question_id", "prompt"], bad_lines="report").columns.tolist() == ["question_id", "prompt"]
    shards = make_shards(path, tmp_path / "shards", 2, media_root=str(tmp_path / "m"), bad_lines="report")
    sh = pd.concat(pd.read_parquet(s) for s in shards)
    assert sh["_media_path"].tolist() == [str(tmp_path / "m/clips/a.mp4")] * 2 + ["/abs/b.jpg"]
    info = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert info["rows"] == 3 and [b["line"] for b in info["bad_lines"]] == sorted(BAD_LINES)
    assert info["bad_lines"][0]["reason"].startswith("not JSON")
    # written back as a prompt file: pass-through keys kept ('text' moves the question to 'prompt')
    write_table(t, tmp_path / "back.jsonl")
    back = read_table(tmp_path / "back.jsonl")
    pd.testing.assert_frame_equal(back[t.columns.tolist()], t, check_like=False)
    # vidcap merge / diff on prompt files
    one = _write_lines(tmp_path / "one.jsonl", [json.dumps(GOOD[0])])
    two = _write_lines(tmp_path / "two.jsonl", [json.dumps(GOOD[2])])
    assert main(["merge", str(one), str(two), "-o", str(tmp_path / "both.jsonl")]) == 0
    assert read_table(tmp_path / "both.jsonl")["question_id"].tolist() == ["0", "q-7"]
    assert main(["diff", str(tmp_path / "both.jsonl"), str(one), "-o", str(tmp_path / "left.csv")]) == 0
    assert read_table(tmp_path / "left.csv")["question_id"].tolist() == ["q-7"]
    assert main(["shard", "--manifest", str(path), "--outdir", str(tmp_path / "r" / "x" / "shards"),
                 "--shard-size", "5"]) == 2
    assert "9 bad line(s): line 2: not JSON" in capsys.readouterr().err


def test_answers_file_from_a_merged_table(tmp_path):
    """gather's answers file: Arrow-typed cells with nulls, per-row model, failures as metadata.error."""
    import pyarrow as pa

    from vidcap.gather import write_answers_file

    s = pd.ArrowDtype(pa.string())
    merged = pd.DataFrame({"question_id": pd.Series(["0", "1", "2"], dtype=s),
                           "prompt": pd.Series(["Q0?", "Q1?", "Q2?"], dtype=s),
                           "category": pd.Series(["conv", None, "detail"], dtype=s),
                           "text": pd.Series(["A dog.", None, "Two cars."], dtype=s),
                           "caption_model": pd.Series(["m1", None, "m1"], dtype=s),
                           "caption_error": pd.Series([None, "FrameError: cannot decode", None], dtype=s)})
    write_answers_file(merged, tmp_path / "a.jsonl", prompt_column="prompt")
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [x["question_id"] for x in lines] == [0, 1, 2] and [x["prompt"] for x in lines] == ["Q0?", "Q1?", "Q2?"]
    assert lines[0]["metadata"] == {"category": "conv"} and lines[0]["model_id"] == "m1"
    assert lines[1]["text"] == "" and lines[1]["metadata"] == {"error": "FrameError: cannot decode"}
    back = read_answers(tmp_path / "a.jsonl").table
    assert back["error"].tolist() == ["", "FrameError: cannot decode", ""]
    write_answers_file(merged.drop(columns=["prompt"]), tmp_path / "b.jsonl", prompt="Describe this video.")
    assert {json.loads(x)["prompt"] for x in (tmp_path / "b.jsonl").read_text().splitlines()} == {"Describe this video."}


# ----------------------------------------------------------- per-row questions in the caption stage

KEY_VAR = "VIDCAP_TEST_NEVA_KEY"
KEY = "sk-nevaFAKE-90d1e2"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two videos, an image, a corrupt file, and a prompt file asking several questions of them, clips
    interleaved (a clip's questions are not adjacent)."""
    from vidcap.dev import synth

    root = tmp_path_factory.mktemp("nevaclips")
    synth.write_video(root / "v0.mp4", num_frames=16, width=96, height=64, seed=0)
    synth.write_video(root / "v1.mp4", num_frames=12, width=64, height=96, seed=1)
    synth.write_image(root / "still.png", width=80, height=60)
    write_corrupt_mp4(root / "corrupt.mp4")
    asks = [("v0.mp4", "What moves?"), ("corrupt.mp4", "Is it dark?"),
            ("v0.mp4", "Describe in great detail every object, its colour, its position and what it does in "
                       "the clip, then say how the camera moves and what the lighting is like."),
            ("v1.mp4", "Who is there?"), ("corrupt.mp4", "What colour?"), ("still.png", "How many cars?"),
            ("v0.mp4", "Where is it?")]
    lines = [{"image" if p.endswith(".png") else "video": p, "text": q, "category": "conv", "question_id": i}
             for i, (p, q) in enumerate(asks)]
    _write_lines(root / "q.jsonl", [json.dumps(x) for x in lines])
    make_shards(root / "q.jsonl", root / "shards", 100)
    return root


def _caption(root: Path, tmp_path: Path, **params):
    from vidcap.caption.stage import CaptionStage
    from vidcap.stages.base import run_stage

    stage = CaptionStage({"prompt": "question", "prompt_column": "prompt", "batch_size": 3,
                          "frames": {"num_frames": 2, "resize_short": 48}, **params})
    out = run_stage(stage, root / "shards" / "00000.parquet", tmp_path / "out.parquet", tmp_path / "j.jsonl",
                    stats_path=tmp_path / "stats.json").to_pandas()
    return stage, out, json.loads((tmp_path / "stats.json").read_text())


@pytest.mark.parametrize("workers", [0, 2])
def test_questions_through_the_tiny_model_each_clip_decoded_once(clips, tmp_path, workers):
    from vidcap.dev.tiny import tiny_model

    model = tiny_model("qwen2_5_vl")
    stage, out, stats = _caption(clips, tmp_path, decode_workers=workers, generation={"max_new_tokens": 4},
                                 transformers={"model": str(model)})
    assert stats["decodes"] == 4, "four media files, seven questions: one decode per file"
    err = out["caption_error"].fillna("")
    assert [bool(e) for e in err] == [False, True, False, False, True, False, False]
    assert err[1] == err[4], "both questions on the corrupt clip get the clip's decode error"
    assert out["text"].notna().sum() == 5 and (out["caption_prompt"][err == ""] == "question").all()
    tokens = out["prompt_tokens"]
    assert tokens[2] > tokens[0] + 20, "each row's own question reached the model (a long one costs tokens)"
    assert out["caption_frame_indices"][5].tolist() == [0], "the image question got the image"
    assert stage.params["prompt_column"] == "prompt"


def test_media_token_order_in_the_chat_template():
    """insert_media_token right: the question before the video in the rendered prompt; left: after."""
    from vidcap.caption.stage import CaptionStage
    from vidcap.dev.tiny import tiny_model
    from vidcap.runners.hf import TransformersRunner

    model = str(tiny_model("qwen2_5_vl"))
    placed = {}
    for where in ("left", "right", None):
        runner = TransformersRunner({"model": model, "insert_media_token": where})
        runner.load_processor(model)
        text = runner._prompt_text("Where is the dog?", "", "video", 2)
        placed[where] = text.index("Where is the dog?") < text.index("<|vision_start|>")
    assert placed == {"left": False, "right": True, None: False}
    base = {"transformers": {"model": model}, "prompt": "question", "prompt_column": "prompt"}
    assert CaptionStage(base).fingerprint() != CaptionStage({**base, "insert_media_token": "right"}).fingerprint()
    assert CaptionStage({**base, "insert_media_token": "right"}).runner_settings()["insert_media_token"] == "right"
    assert "prompt_column" not in CaptionStage({"transformers": {"model": model}}).params, "old fingerprints kept"


def test_questions_through_the_openai_runner_with_neva_knobs(clips, tmp_path, monkeypatch):
    from vidcap.dev.chat_server import ChatServer

    monkeypatch.setenv(KEY_VAR, KEY)
    neva = {"greedy": False, "temperature": 0.2, "top_k": 0, "top_p": 0.9, "tokens_to_generate": 40,
            "repetition_penalty": 1.2, "add_BOS": False, "insert_media_token": "left"}
    with ChatServer(api_key=KEY) as srv:
        openai = {"base_url": srv.url, "api_key_env": KEY_VAR, "model": "vlm", "concurrency": 4, "timeout_s": 5}
        stage, out, stats = _caption(clips, tmp_path, runner="openai", decode_workers=1, neva_inference=neva,
                                     openai=openai, prompt="mine",
                                     prompt_spec={"user": "Answer briefly. {question}", "system": "Be exact."})
        records = srv.chat_records()
    assert stats["decodes"] == 4 and len(records) == 5
    ok = out[out["caption_error"].isna()]
    for qid, text in zip(ok.index, ok["text"]):
        asked = json.loads((clips / "q.jsonl").read_text().splitlines()[qid])["text"]
        assert text.endswith(f"Answer briefly. {asked}"[-40:]), (qid, text)   # the server echoes the request's end
    for rec in records:
        body = rec["body"]
        assert body["messages"][0] == {"role": "system", "content": "Be exact."}
        parts = [p["type"] for p in body["messages"][1]["content"]]
        assert parts[-1] == "text" and set(parts[:-1]) == {"image_url"}, "left: the media before the question"
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["repetition_penalty"]) == (0.2, 0.9, 40, 1.2)
        assert "top_k" not in body, "NeVA's top_k 0 means off"
    assert stage.settings["generation"]["max_new_tokens"] == 40
    from vidcap.caption.stage import CaptionStage

    with pytest.raises(ConfigError, match="neva_inference.media_base_path.*media_root"):
        CaptionStage({"neva_inference": {"media_base_path": "/videos"}})
    with pytest.raises(ConfigError, match="contradicts"):
        CaptionStage({"neva_inference": {"insert_media_token": "left"}, "insert_media_token": "right"})
    with pytest.raises(ConfigError, match="unknown NeVA inference key"):
        CaptionStage({"neva_inference": {"tokens_to_generat": 3}})
    with pytest.raises(ConfigError, match="set stages.caption.prompt_column"):
        CaptionStage({"prompt": "question"})
