"""``vidcap compare``: the same sampled rows captioned two ways (tiny local model vs an OpenAI-compatible
server), judged with the caption rubric by a scripted judge on 127.0.0.1, table and report checked."""
from __future__ import annotations

import json
import random
import re

import pandas as pd
import pytest
import yaml

from vidcap.cli import main
from vidcap.dev import synth
from vidcap.dev.chat_server import ChatServer
from vidcap.dev.tiny import tiny_model
from vidcap.io.tables import write_table
from vidcap.judge.rules import RULES

KEY_VAR = "VIDCAP_TEST_COMPARE_KEY"
KEY = "sk-compareFAKE-6a02"


def _block(text: str, n: int) -> str:
    m = re.search(rf"\[Assistant {n}\]\n(.*?)\n\[End of Assistant {n}\]", text, re.S)
    return m.group(1) if m else ""


def rubric_judge(body: dict) -> str:
    """Caption requests answered by the echo (``A test caption ...``) score 8, the others 3, in every
    criterion; judge requests get the caption rubric's JSON in whatever order the captions come."""
    text = "\n".join(m["content"] if isinstance(m["content"], str) else
                     " ".join(p.get("text", "") for p in m["content"] if p.get("type") == "text")
                     for m in body["messages"])
    if "[Assistant 1]" not in text:
        return f"A test caption with {len(text)} characters of prompt."
    s1, s2 = (8 if "A test caption" in _block(text, n) else 3 for n in (1, 2))
    crit = {k: [s1, s2] for k in ("accuracy", "detail", "hallucination", "camera_motion")}
    return json.dumps({"assistant_1": s1, "assistant_2": s2, "criteria": crit, "reason": "The echo is better."})


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_VAR, KEY)
    with ChatServer(api_key=KEY, reply=rubric_judge, verbatim=True) as srv:
        yield srv


def test_compare_tiny_sample_table_categories_and_report(tmp_path, server, capsys):
    n, sample, seed = 5, 4, 3
    picked = sorted(random.Random(seed).sample(range(n), sample))
    media = tmp_path / "media"
    paths = []
    for i in range(n):
        if i == picked[0]:   # a clip no model can read: both captions fail, the pair is not judged
            (media / "bad.mp4").write_bytes(b"\x00" * 300)
            paths.append("bad.mp4")
        else:
            synth.write_video(media / f"c{i}.mp4", num_frames=8, width=64, height=48, seed=i)
            paths.append(f"c{i}.mp4")
    write_table(pd.DataFrame({"path": paths, "category": ["street", "nature", "street", "nature", "street"],
                              "k": [str(i) for i in range(n)]}), media / "m.csv")
    openai = {"base_url": server.url, "api_key_env": KEY_VAR, "model": "judge-x", "concurrency": 4, "timeout_s": 5,
              "price_per_1m_input": 1.0, "price_per_1m_output": 2.0}
    common = {"manifest": str(media / "m.csv"), "results_dir": str(tmp_path / "results")}
    frames = {"num_frames": 2, "resize_short": 48}
    a = {**common, "stages": {"caption": {"prompt": "video_short", "batch_size": 2, "decode_workers": 0, "frames": frames,
                                          "generation": {"max_new_tokens": 4},
                                          "transformers": {"model": str(tiny_model("qwen2_5_vl"))}},
                              "judge": {"openai": openai}}}
    b = {**common, "stages": {"caption": {"runner": "openai", "prompt": "video_detailed", "decode_workers": 0,
                                          "frames": frames, "openai": {**openai, "model": "vlm-b"}}}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(a))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(b))
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--sample", str(sample),
                 "--seed", str(seed), "-o", str(out)]) == 0
    printed = capsys.readouterr().out

    table = pd.read_parquet(out / "compare.parquet")
    assert table["k"].tolist() == [str(i) for i in picked], "the sampled rows, in manifest order"
    bad = table["path"].str.endswith("bad.mp4")
    assert bad.sum() == 1
    assert table.loc[bad, "caption_a_error"].notna().all() and table.loc[bad, "caption_b_error"].notna().all()
    assert table.loc[bad, "judge_error"].str.contains("caption A failed").all()
    ok = table[~bad]
    assert ok["judge_error"].isna().all() and (ok["caption_b"].str.startswith("A test caption")).all()
    assert (ok["caption_a_model"] == str(tiny_model("qwen2_5_vl"))).all() and (ok["caption_b_model"] == "vlm-b").all()
    assert (ok["judge_rule"] == "caption").all() and (ok["judge_category"].isin(["street", "nature"])).all()
    assert (ok["judge_score_a"] == 3.0).all() and (ok["judge_score_b"] == 8.0).all() and (ok["judge_winner"] == "B").all()
    assert (ok["judge_order_agree"]).all()
    crit = json.loads(ok["judge_criteria"].iloc[0])
    assert crit == {"accuracy": [3.0, 8.0], "camera_motion": [3.0, 8.0], "detail": [3.0, 8.0], "hallucination": [3.0, 8.0]}
    judge_requests = [r for r in server.chat_records() if "[Assistant 1]" in json.dumps(r["body"])]
    assert len(judge_requests) == 2 * len(ok), "both orders, nothing for the failed pair"
    assert all(RULES["caption"] in json.dumps(r["body"]) for r in judge_requests), "the caption rubric"

    cats = pd.read_csv(out / "compare.categories.csv").set_index("category")
    assert cats.index.tolist() == ["all", "nature", "street"]
    assert cats.loc["all", "n"] == len(ok) and cats.loc["all", "failed"] == 1
    assert cats.loc["all", "relative"] == pytest.approx(100 * 8 / 3)
    assert f"| all | {len(ok)} | 1 | 3.00 | 8.00 | 266.7 |" in printed
    assert cats.loc["all", "position_bias"] == 0.0 and cats.loc["all", "relative_corrected"] == pytest.approx(100 * 8 / 3)
    assert "| +0.00 | 0.00 - 0.00 | 266.7 | 266.7 - 266.7 |" in printed, "bias and corrected score beside the raw one"
    assert f"B better {len(ok)}, A better 0, tie 0, not judged 1" in printed

    html = (out / "compare.report.html").read_text()
    section = html[html.index('<section id="judge">'):html.index('<section id="gallery">')]
    assert f"A = {tmp_path / 'a.yaml'}" in section and "Side by side" in section
    assert section.count('class="item pair"') == sample, "every pair shown: B better and the failed one"
    assert section.count("winner B") == len(ok) and "not judged" in section
    assert section.count('src="data:image/jpeg;base64,') >= 2 * len(ok), "thumbnails of the judged clips"
    for cap in ok["caption_a"].tolist() + ok["caption_b"].tolist():
        assert cap.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:40] in section
    assert "266.7" in section and "camera motion" in section
    assert "corrected relative (%)" in section and "<td>+0.00</td>" in section and "266.7 – 266.7" in section

    # a rerun resumes from the journals: nothing is sent again
    before = len(server.chat_records())
    assert main(["compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--sample", str(sample),
                 "--seed", str(seed), "-o", str(out), "--no-report"]) == 0
    assert len(server.chat_records()) == before
