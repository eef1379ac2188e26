from pathlib import Path

import pytest

from semcom.common.wire import protogen

pytestmark = pytest.mark.unit  # no server and no process: `make test-unit`


def test_committed_stubs_match_the_proto_files(tmp_path: Path):
    generated = {p.name: p.read_text() for p in protogen.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in protogen.COMMITTED_STUBS.glob("*_pb2*.py*")}
    assert sorted(generated) == sorted(committed), "stub files differ: run `make proto`"
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"stubs out of date with proto/: {stale}; run `make proto` and commit"
