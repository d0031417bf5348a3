"""Tags stage: answer parsing over a corpus of messy answers, the local chat model (tiny, built offline),
the OpenAI-compatible path against the test server, and a real Snakemake run with tags + clean."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import read_result, run_snakemake, write_config
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer
from vidcap.dev.tiny import tiny_model
from vidcap.io.shards import make_shards
from vidcap.io.tables import write_table
from vidcap.runners.base import Request
from vidcap.stages import get_stage
from vidcap.stages.base import run_stage
from vidcap.tags.parse import normalize, parse_answer, parse_list
from vidcap.tags.stage import effective_keys

# ------------------------------------------------------------------------------------- parsing corpus

LIST_CORPUS = [
    ("[dog, person]", ["dog", "person"]),
    ("[Dog, Person, dog]", ["dog", "person"]),
    ('["dog", "person"]', ["dog", "person"]),
    ("['dog', 'person']", ["dog", "person"]),
    ("[ run , laugh ]", ["run", "laugh"]),
    ("[]", []),
    ("Here are the objects: [dog, ball, frisbee]. Let me know if you need more!", ["dog", "ball", "frisbee"]),
    ('Sure! ```json\n["Chef", "knife", "cutting board"]\n```', ["chef", "knife", "cutting board"]),
    ("```\n[\"car\", \"road\",]\n```", ["car", "road"]),
    ("- dog\n- person\n- frisbee", ["dog", "person", "frisbee"]),
    ("* Running\n* Jumping\n* running", ["running", "jumping"]),
    ("1. a woman\n2. the umbrella\n3) rain", ["woman", "umbrella", "rain"]),
    ("Objects found:\n• cat\n• sofa (grey)\n• window", ["cat", "sofa", "window"]),
    ("- **Dog**: a brown dog playing\n- **Ball**: red", ["dog", "ball"]),
    ('"surfer", "wave", "surfboard"', ["surfer", "wave", "surfboard"]),
    ("“car”, “bridge”", ["car", "bridge"]),
    ("Objects: car; road; tree.", ["car", "road", "tree"]),
    ("dog, cat and a bird", ["dog", "cat", "bird"]),
    ("cooking", ["cooking"]),
    ("A red car.", ["red car"]),
    ("None", []),
    ("None.", []),
    ("N/A", []),
    ("n/a", []),
    ("There are no actions mentioned.", []),
    ("No objects found", []),
    ("Actions: none", []),
    ("[none]", []),
    ("[dog, n/a, none, person]", ["dog", "person"]),
    ('{"objects": ["Tree", "bench"]}', ["tree", "bench"]),
    ("The video shows a dog running happily along the beach at sunset.", None),
    ("I'm sorry, but I cannot determine that from the caption.", None),
    ("", None),
    ("   \n ", None),
    ("[a man who is walking slowly down the long street in the rain, dog]", ["dog"]),
]


@pytest.mark.parametrize("answer, expected", LIST_CORPUS)
def test_parse_list_corpus(answer, expected):
    assert parse_list(answer) == expected


JOINT_CORPUS = [
    ('{"objects": ["Dog", "person"], "actions": ["run"]}', {"objects": ["dog", "person"], "actions": ["run"]}),
    ('```json\n{"objects": ["dog",], "actions": []}\n```', {"objects": ["dog"], "actions": []}),
    ("Sure, here it is:\n{'objects': 'dog, cat', 'actions': None}\nHope that helps.",
     {"objects": ["dog", "cat"], "actions": []}),
    ('Here you go: {"Objects": ["dog"], "Actions": "none"} done', {"objects": ["dog"], "actions": []}),
    ('{"tags": {"objects": ["dog"], "actions": ["sit"]}}', {"objects": ["dog"], "actions": ["sit"]}),
    ('{"objects": ["dog"]}', {"objects": ["dog"], "actions": None}),
    ('{"objects": [{"name": "Dog"}, {"name": "cat"}], "actions": [["run"], "jump"]}',
     {"objects": ["dog", "cat"], "actions": ["run", "jump"]}),
    ("Objects: [dog, cat]\nActions: [run]", {"objects": ["dog", "cat"], "actions": ["run"]}),
    ("**Objects**:\n- dog\n- cat\n\n**Actions**:\n- running", {"objects": ["dog", "cat"], "actions": ["running"]}),
    ("objects - none\nactions: walk, talk", {"objects": None, "actions": ["walk", "talk"]}),
    ("I cannot help with that.", {"objects": None, "actions": None}),
    ('{"objects": ["dog", "ca', {"objects": None, "actions": None}),  # cut at max_new_tokens
]


@pytest.mark.parametrize("answer, expected", JOINT_CORPUS)
def test_parse_answer_corpus(answer, expected):
    assert parse_answer(answer, ["objects", "actions"]) == expected


def test_normalize_rules():
    assert normalize([" The Dog ", "dog", "A  red   car.", "`cat`", None, 3, "*Bird*", "an apple"]) == \
        ["dog", "red car", "cat", "3", "bird", "apple"]
    assert normalize(["one two three four five six seven"]) == []


def test_keys_builtin_user_and_dropped():
    assert list(effective_keys({})) == ["objects", "actions"]
    keys = effective_keys({"setting": "the place", "actions": None, "objects": "things"})
    assert keys == {"objects": "things", "setting": "the place"}
    for bad in ({"Bad": "x"}, {"text": "x"}, {"objects": None, "actions": None}):
        with pytest.raises(ValueError):
            effective_keys(bad)


def test_columns_params_and_fingerprint():
    stage = get_stage("tags", {"keys": {"style": "the visual style"}})
    assert stage.schema().field("objects").type == pa.list_(pa.string())
    assert list(stage.columns) == ["objects", "actions", "style", "tags_model", "tags_prompt_hash"]
    fp = stage.fingerprint()
    assert get_stage("tags", {"keys": {"style": "the visual style"}, "batch_size": 3}).fingerprint() == fp
    assert get_stage("tags", {"keys": {"style": "the look"}}).fingerprint() != fp
    assert get_stage("tags", {"keys": {"style": "the visual style"}, "json_mode": False}).fingerprint() != fp


# ------------------------------------------------------------------------------------------- helpers


def _shard(tmp_path, texts: list) -> str:
    df = pd.DataFrame({"path": [f"v{i}.mp4" for i in range(len(texts))], "text": texts})
    write_table(df, tmp_path / "m.parquet")
    make_shards(tmp_path / "m.parquet", tmp_path / "shards", 100, None)
    return str(tmp_path / "shards" / "00000.parquet")


def _caption(body: dict) -> str:
    text = "\n".join(m["content"] for m in body["messages"] if isinstance(m.get("content"), str))
    m = re.search(r'Caption:\n"""(.*?)"""', text, re.S)
    return m.group(1) if m else ""


# ---------------------------------------------------------------------------------- local chat model


@pytest.fixture(scope="module")
def chat_model():
    return tiny_model("qwen2")


def test_local_model_batches_left_padded_like_single_rows(chat_model):
    from vidcap.runners import get_runner

    runner = get_runner("text_transformers", {"model": str(chat_model), "batch_size": 4,
                                               "generation": {"max_new_tokens": 6}})
    runner.load()
    assert runner.processor.padding_side == "left"
    reqs = [Request(f"r{i}", user="Caption: " + "a dog runs on the beach " * (i * 3 + 1), system="sys")
            for i in range(4)]
    batched = dict(runner.run(reqs))
    runner.batch_size = 1
    single = dict(runner.run(reqs))
    assert set(batched) == {"r0", "r1", "r2", "r3"}
    for k in batched:
        assert batched[k].text == single[k].text, "left padding must not change a row's answer"
        assert batched[k].finish_reason in ("stop", "length")
        assert batched[k].prompt_tokens == single[k].prompt_tokens


def test_local_model_stage_random_weights_never_guess(tmp_path, chat_model):
    shard = _shard(tmp_path, ["A dog runs on the beach.", "", "A chef cuts vegetables.", None, "A cat sleeps."])
    stage = get_stage("tags", {"runner": "transformers", "batch_size": 2,
                               "transformers": {"model": str(chat_model)},
                               "generation": {"max_new_tokens": 12}})
    table = run_stage(stage, shard, tmp_path / "out.parquet", tmp_path / "j.jsonl").to_pandas()
    assert table.shape[0] == 5
    assert table["tags_error"][1] == "no caption text (empty)" and table["objects"][1] is None
    assert table["tags_error"][3] == "no caption text (empty)"
    for i in (0, 2, 4):
        assert table["tags_model"][i] == str(chat_model)
        assert table["tags_prompt_hash"][i] == stage.prompt_hash
        for key in ("objects", "actions"):
            assert isinstance(table[key][i].tolist(), list), "answered rows hold lists (maybe empty)"
        if len(table["objects"][i]) == 0 and len(table["actions"][i]) == 0:
            assert table["tags_error"][i], "no list found must be said, not hidden"
    assert pq.read_table(tmp_path / "out.parquet").schema.field("actions").type == pa.list_(pa.string())


def test_no_text_no_model_load(tmp_path):
    shard = _shard(tmp_path, ["", None])
    stage = get_stage("tags", {"transformers": {"model": str(tmp_path / "does-not-exist")}})
    table = run_stage(stage, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl")
    assert table.column("tags_error").to_pylist() == ["no caption text (empty)"] * 2


# ---------------------------------------------------------------------------------------- API runner

ANSWERS = {
    "A dog runs on the beach.": '{"objects": ["Dog", "beach"], "actions": ["run"]}',
    "A cat sleeps on a sofa.": ('Sure! Here is the JSON you asked for:\n```json\n{"objects": ["cat", "sofa",], '
                                '"actions": ["sleep"]}\n```\nLet me know if you need anything else.'),
    "Nothing to see.": "I am not sure what you mean.",
    "A man waves.": '{"objects": ["man"]}',
}


def _api_stage(srv, monkeypatch, **extra):
    monkeypatch.setenv("VIDCAP_TEST_KEY", "")
    return get_stage("tags", {"runner": "openai", "openai": {"base_url": srv.url, "api_key_env": "VIDCAP_TEST_KEY",
                                                             "model": "test-llm", "backoff_s": 0.01,
                                                             "max_tries": 2}, **extra})


def test_api_json_mode_scripted_answers(tmp_path, monkeypatch):
    texts = list(ANSWERS) + ["", "Broken request."]
    shard = _shard(tmp_path, texts)
    with ChatServer(reply=lambda body: ANSWERS.get(_caption(body), "{}")) as srv:
        srv.script("Broken request.", ["400", "400"])
        stage = _api_stage(srv, monkeypatch)
        table = run_stage(stage, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl").to_pandas()
        bodies = [r["body"] for r in srv.chat_records()]
    assert len(bodies) == 5, "one request per row with text (all keys at once)"
    assert all(b["response_format"] == {"type": "json_object"} for b in bodies)
    assert all(b["messages"][0]["role"] == "system" for b in bodies)
    rows = {t: r for t, r in zip(texts, table.to_dict("records"))}
    assert list(rows["A dog runs on the beach."]["objects"]) == ["dog", "beach"]
    assert list(rows["A dog runs on the beach."]["actions"]) == ["run"]
    assert pd.isna(rows["A dog runs on the beach."]["tags_error"])
    assert rows["A dog runs on the beach."]["tags_model"] == "test-llm"
    assert list(rows["A cat sleeps on a sofa."]["objects"]) == ["cat", "sofa"]
    nothing = rows["Nothing to see."]
    assert list(nothing["objects"]) == [] and list(nothing["actions"]) == []
    assert nothing["tags_error"] == "no list in the answer for: objects, actions"
    assert list(rows["A man waves."]["objects"]) == ["man"]
    assert rows["A man waves."]["tags_error"] == "no list in the answer for: actions"
    assert rows[""]["tags_error"] == "no caption text (empty)"
    assert rows["Broken request."]["objects"] is None and "400" in rows["Broken request."]["tags_error"]


def test_api_per_key_bracketed_lists(tmp_path, monkeypatch):
    def reply(body):
        text = body["messages"][-1]["content"]
        if "visible" in text:       # the objects instruction
            return "Here are the objects: [Dog, frisbee, dog]"
        if "the place" in text:
            return "park"
        return "Actions: run, jump"

    shard = _shard(tmp_path, ["A dog jumps for a frisbee in a park.", "A dog sits."])
    with ChatServer(reply=reply) as srv:
        stage = _api_stage(srv, monkeypatch, json_mode=False, keys={"setting": "the place where it happens"})
        table = run_stage(stage, shard, tmp_path / "o.parquet", tmp_path / "j.jsonl").to_pandas()
        bodies = [r["body"] for r in srv.chat_records()]
    assert len(bodies) == 6, "one request per key and row"
    assert not any("response_format" in b for b in bodies)
    for i in range(2):
        assert list(table["objects"][i]) == ["dog", "frisbee"]
        assert list(table["actions"][i]) == ["run", "jump"]
        assert list(table["setting"][i]) == ["park"]
        assert pd.isna(table["tags_error"][i])


# ------------------------------------------------------------------------------------ the workflow


@pytest.mark.e2e
def test_snakemake_tags_and_clean_with_summary(tmp_path):
    media = tmp_path / "media"
    rows = []
    captions = ["The video shows a dog running on the beach.", "A cat sleeps on a sofa.",
                "The video shows a dog running on the beach.", "", "In this clip, a man waves at www.example.com"]
    for i, text in enumerate(captions):
        # flat grey frames (no texture): the motion stage must say 'unclassified' and append nothing
        synth.write_video(media / f"c{i}.mp4", num_frames=12, width=64, height=48,
                          frames=lambda _, v=40 + 30 * i: np.full((48, 64, 3), v, np.uint8))
        rows.append({"path": f"c{i}.mp4", "text": text})
    write_table(pd.DataFrame(rows), media / "m.csv")

    def reply(body):
        cap = _caption(body)
        if "dog" in cap:
            return '{"objects": ["dog", "beach"], "actions": ["run"], "setting": ["beach"]}'
        if "cat" in cap:
            return 'Sure: {"objects": ["cat", "sofa"], "actions": ["sleep"], "setting": "living room"}'
        return "I don't know."

    with ChatServer(reply=reply) as srv:
        cfg = write_config(tmp_path, name="tg", manifest=str(media / "m.csv"), shard_size=3,
                           stages={"clean": {"append_motion": True},
                                   "tags": {"enabled": True, "runner": "openai",
                                            "keys": {"setting": "the place where the video happens"},
                                            "openai": {"base_url": srv.url, "api_key_env": "VIDCAP_TEST_KEY",
                                                       "model": "test-llm"},
                                            "resources": {"gpu": 0}}})
        run_snakemake(tmp_path, cfg, env={"VIDCAP_TEST_KEY": ""})
        n_requests = len(srv.chat_records())
    assert n_requests == 4, "no request for the empty caption"
    out = read_result(tmp_path / "results" / "tg.csv")
    cols = list(out.columns)
    assert cols.index("clean_text") < cols.index("cmotion") < cols.index("objects"), "STAGE_ORDER"
    assert out["objects"].tolist() == ['["dog", "beach"]', '["cat", "sofa"]', '["dog", "beach"]', "", "[]"]
    assert json.loads(out["setting"][1]) == ["living room"]
    assert out["tags_error"][3] == "no caption text (empty)"
    assert out["tags_error"][4] == "no list in the answer for: objects, actions, setting"
    # these flat synthetic clips are 'unclassified' (low texture): no camera sentence is appended; the
    # sentence itself is checked with real motion clips in test_workflow (motion.append_to_text alias)
    assert out["cmotion"].tolist() == ["unclassified"] * 5
    assert out["clean_text"].tolist() == ["A dog running on the beach.", "A cat sleeps on a sofa.",
                                          "A dog running on the beach.", "", "A man waves at www.example.com"]
    assert out["flag_url"].tolist() == ["False", "False", "False", "False", "True"]
    assert out["flag_empty"].tolist() == ["False", "False", "False", "True", "False"]
    row_ids = out["row_id"].tolist()
    assert out["caption_duplicate"].tolist() == ["", "", row_ids[0], "", ""]
    table = pq.read_table(tmp_path / "results" / "tg.parquet")
    assert table.schema.field("objects").type == pa.list_(pa.string())
    summary = json.loads((tmp_path / "results" / "tg.summary.json").read_text())
    assert summary["rows"] == 5
    assert summary["tags"]["objects"] == [["beach", 2], ["dog", 2], ["cat", 1], ["sofa", 1]]
    assert summary["tags"]["setting"] == [["beach", 2], ["living room", 1]]
    assert summary["stages"]["tags"]["failed"] == 2
    assert summary["stages"]["probe"]["failed"] == 0
    assert summary["cmotion"] == [["unclassified", 5]]
    assert summary["resolution"] == [["64x48", 5]]
    assert summary["duplicates"] == {"duplicated_captions": 1}
    assert summary["caption_words"]["count"] == 5
    long = pd.read_csv(tmp_path / "results" / "tg.summary.csv", dtype=str, keep_default_na=False)
    assert ((long.section == "tags") & (long.key == "setting") & (long.value == "beach") & (long["count"] == "2")).any()
