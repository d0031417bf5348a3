"""envs/*.yaml (what rules run in) must pin exactly what pyproject.toml pins (dependencies + the s3 extra)."""
import re
import tomllib

import yaml

from tests.helpers import REPO


def pins(specs):
    out = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[\w,]+\])?===?([^;\s]+)", spec.strip())
        assert m, f"not an exact pin: {spec!r}"
        out[m.group(1).lower()] = m.group(2)
    return out


def test_env_pins_match_package_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    # the env also carries the runtime extras rules need (object storage: docs/storage.md)
    package = pins(project["dependencies"] + project["optional-dependencies"]["s3"])
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        deps = yaml.safe_load(env.read_text())["dependencies"]
        pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
        assert pins(pip) == package, env.name


def test_every_rule_declares_an_env_that_exists():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), (smk.name, env)


def test_the_scores_extra_pins_its_libraries_without_opencv_python():
    """faiss-cpu and the OCR's dependencies are pinned in the ``scores`` extra and in ``test``; the OCR
    package itself is installed with --no-deps (its metadata asks for opencv-python, which would clash
    with opencv-python-headless): docs/scores.md, Makefile."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    scores, test = pins(extras["scores"]), pins(extras["test"])
    assert "faiss-cpu" in scores and "onnxruntime" in scores
    assert all(test.get(name) == version for name, version in scores.items())
    assert not any(name.startswith("opencv-python") or name.startswith("rapidocr") for name in (*scores, *test))
    assert "--no-deps rapidocr_onnxruntime==" in (REPO / "Makefile").read_text()
