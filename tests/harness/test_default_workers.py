"""`ddoauth conformance` (make conformance) runs with the parallelism measured fastest on a 2-CPU machine
(-n 2) unless the user chose: their -n / --dist / -p no:xdist, or DDOAUTH_WORKERS."""
from __future__ import annotations

import pytest

from core.errors import ConfigError
from harness.cli import default_workers


@pytest.mark.parametrize("args,cpus,env,expected", [
    ([], 2, {}, ["-n", "2"]),
    ([], 8, {}, ["-n", "2"]),  # more CPUs were not measured: the user says (DDOAUTH_WORKERS, -n)
    ([], 1, {}, []),
    (["-n", "4"], 2, {}, []),
    (["-n4"], 2, {}, []),
    (["--numprocesses=auto"], 2, {}, []),
    (["--dist", "loadfile"], 2, {}, []),
    (["-p", "no:xdist"], 2, {}, []),
    (["-m", "nightly"], 2, {}, ["-n", "2"]),
    ([], 2, {"DDOAUTH_WORKERS": "0"}, []),
    ([], 2, {"DDOAUTH_WORKERS": "1"}, []),
    ([], 2, {"DDOAUTH_WORKERS": "4"}, ["-n", "4"]),
])
def test_default_workers(args, cpus, env, expected):
    assert default_workers(args, cpus=cpus, env=env) == expected


def test_bad_workers_setting_is_one_line():
    with pytest.raises(ConfigError, match="DDOAUTH_WORKERS must be a whole number"):
        default_workers([], cpus=2, env={"DDOAUTH_WORKERS": "many"})
