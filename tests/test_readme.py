"""README stays true: its test command is what CI runs, and every option is documented."""

import re

from conftest import ROOT
from tfs_user.options import OPTIONS


def _readme():
    return (ROOT / "README.md").read_text()


def test_readme_test_command_is_the_ci_script_and_it_runs_pytest():
    commands = re.findall(r"```bash\n(.+?)\n```", _readme())
    assert "bash .ci/run" in commands
    script = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-dev.txt" in script and "python -m pytest -q" in script


def test_readme_main_job_uses_a_bundled_config():
    main_job = next(c for c in re.findall(r"```bash\n(.+?)\n```", _readme()) if "locust --config" in c)
    config = re.search(r"--config (\S+)", main_job).group(1)
    assert (ROOT / config).is_file()
    assert "demo-server = true" in (ROOT / config).read_text()


def test_every_option_is_in_the_options_page():
    page = (ROOT / "docs" / "options.md").read_text()
    for flags, _ in OPTIONS:
        assert f"`{flags[0]}`" in page or f"`{flags[0]}`," in page, flags[0]
