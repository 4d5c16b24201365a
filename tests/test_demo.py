"""`scitie demo` runs every model on bundled data; CI runs the README's test command."""
import re
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    demo, tests = _readme_commands()[:2]
    assert "scitie demo" in demo and demo.startswith("pip install torch==2.13.0")
    assert "pytest" in tests and tests.startswith("pip install torch==2.13.0")
    assert tests in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_demo_runs_every_model():
    proc = subprocess.run([sys.executable, "-c", "from sciTie.cli import main; raise SystemExit(main(['demo']))"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import tomllib

    from sciTie.recipes import BUNDLED

    for path in BUNDLED.glob("*.toml"):
        if tomllib.loads(path.read_text()).get("demo"):
            assert f"=== {path.stem}:" in proc.stdout
    assert "not available" not in proc.stdout and "FAILED" not in proc.stdout


def test_readme_python_example_runs_as_written():
    """The README's first Python block runs unchanged and finds the rate it was made with."""
    code = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    result = namespace["result"]
    assert result.value("k2") == result.value("k1")
    assert abs(result.value("k1") - 0.7) < 4 * result.error("k1")
    assert result.nvarys == 3
